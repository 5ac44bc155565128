// A local S3-like endpoint that verifies SigV4 with the AWS SDK's own signer
// (@smithy/signature-v4) and the brokered key — independent of the proxy's re-signer. It
// answers PutObject (plain, UNSIGNED-PAYLOAD, aws-chunked signed or with an unsigned trailer) and
// GetObject, STS GetCallerIdentity, and any other service's request with 200 once its signature
// holds; a signature that does not verify (or an access key it does not know) gets 403
// SignatureDoesNotMatch. Plain HTTP, or HTTPS with a test certificate. For the re-signer's tests
// and the proxy's black-box test (test/proxy-sigv4.test.ts).
import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { buffer } from 'node:stream/consumers';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentials } from '../resign.ts';

class Sha256 {
  readonly #h;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    const key =
      secret === undefined || typeof secret === 'string'
        ? secret
        : ArrayBuffer.isView(secret)
          ? new Uint8Array(secret.buffer, secret.byteOffset, secret.byteLength)
          : new Uint8Array(secret);
    this.#h = key === undefined ? createHash('sha256') : createHmac('sha256', key);
  }
  update(data: Uint8Array | string): void {
    this.#h.update(data);
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#h.digest()));
  }
}

export interface SigV4Endpoint {
  readonly url: string;
  /** Objects stored by PutObject, by path. */
  readonly objects: Map<string, Buffer>;
  /** What each verified request declared as x-amz-content-sha256 ("" when absent). */
  readonly payloadModes: string[];
  /** The access key id of each verified request. */
  readonly accessKeyIds: string[];
  close(): Promise<void>;
}

/** The secret behind an access key id, as AWS looks it up; undefined: unknown key. */
export type AwsKeyLookup = (accessKeyId: string) => AwsCredentials | undefined;

export interface SigV4EndpointOptions {
  /** HTTPS with this certificate and key (PEM); default plain HTTP. */
  readonly tls?: { readonly cert: string; readonly key: string };
}

const AUTH =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/;

/** `creds`: the one key it knows, or a lookup by access key id. */
export async function startSigV4Endpoint(
  creds: AwsCredentials | AwsKeyLookup,
  options: SigV4EndpointOptions = {},
): Promise<SigV4Endpoint> {
  const objects = new Map<string, Buffer>();
  const payloadModes: string[] = [];
  const accessKeyIds: string[] = [];
  const lookup: AwsKeyLookup =
    typeof creds === 'function' ? creds : (id) => (id === creds.accessKeyId ? creds : undefined);
  const handle: RequestListener = (req, res) => {
    verify(req, lookup).then(
      ({ ok, body, mode, accessKeyId }) => {
        if (!ok) {
          res.writeHead(403, { 'content-type': 'application/xml' });
          res.end('<Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error>');
          return;
        }
        payloadModes.push(mode);
        accessKeyIds.push(accessKeyId);
        const path = (req.url ?? '/').split('?')[0] as string;
        if (req.method === 'POST' && /(?:^|&)Action=GetCallerIdentity(?:&|$)/.test(String(body))) {
          res.writeHead(200, { 'content-type': 'text/xml' });
          res.end(callerIdentityXml(accessKeyId));
        } else if (req.method === 'PUT') {
          objects.set(path, body);
          res.writeHead(200, { etag: `"${createHash('md5').update(body).digest('hex')}"` });
          res.end();
        } else if (req.method === 'GET' && objects.has(path)) {
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          res.end(objects.get(path));
        } else {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{}');
        }
      },
      (e: unknown) => {
        res.writeHead(400, { 'content-type': 'application/xml' });
        res.end(`<Error><Code>InvalidRequest</Code><Message>${String(e)}</Message></Error>`);
      },
    );
  };
  const server: Server = options.tls
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handle)
    : createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    objects,
    payloadModes,
    accessKeyIds,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** STS's answer to GetCallerIdentity, naming the caller by its access key id. */
function callerIdentityXml(accessKeyId: string): string {
  return (
    '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">' +
    '<GetCallerIdentityResult>' +
    `<Arn>arn:aws:sts::123456789012:assumed-role/test/${accessKeyId}</Arn>` +
    `<UserId>AROATEST:${accessKeyId}</UserId><Account>123456789012</Account>` +
    '</GetCallerIdentityResult><ResponseMetadata><RequestId>0</RequestId></ResponseMetadata>' +
    '</GetCallerIdentityResponse>'
  );
}

async function verify(req: IncomingMessage, lookup: AwsKeyLookup) {
  const raw = await buffer(req);
  const m = AUTH.exec(req.headers.authorization ?? '');
  const creds = m ? lookup(m[1] as string) : undefined;
  if (!m || !creds) return { ok: false, body: raw, mode: '', accessKeyId: '' };
  const accessKeyId = m[1] as string;
  const [, , , region, service, signedList] = m as unknown as string[];
  const amzDate = String(req.headers['x-amz-date']);
  const signingDate = new Date(
    amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'),
  );
  const signer = new SignatureV4({
    credentials: creds,
    region: region!,
    service: service!,
    sha256: Sha256,
    uriEscapePath: !service!.startsWith('s3'),
    applyChecksum: false,
  });
  const url = new URL(req.url ?? '/', 'http://x');
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of url.searchParams) {
    const had = query[k];
    query[k] = had === undefined ? v : [...(Array.isArray(had) ? had : [had]), v];
  }
  const headers: Record<string, string> = {};
  for (const name of signedList!.split(';')) headers[name] = String(req.headers[name]);
  const mode = String(req.headers['x-amz-content-sha256'] ?? '');
  const rawPath = (req.url ?? '/').split('?')[0] as string;
  const signed = await signer.sign(
    {
      method: req.method ?? 'GET',
      protocol: 'http:',
      hostname: '127.0.0.1',
      path: rawPath,
      query,
      headers,
      ...(mode === '' ? { body: raw } : {}),
    },
    { signingDate },
  );
  if (signed.headers.authorization !== req.headers.authorization) {
    return { ok: false, body: raw, mode, accessKeyId };
  }
  if (mode === 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD') {
    const seed = m[6] as string;
    const body = await signedChunks(raw, seed, signer, signingDate);
    return { ok: body !== undefined, body: body ?? raw, mode, accessKeyId };
  }
  if (mode === 'STREAMING-UNSIGNED-PAYLOAD-TRAILER')
    return { ok: true, body: unsignedChunks(raw), mode, accessKeyId };
  if (/^[0-9a-f]{64}$/.test(mode) && createHash('sha256').update(raw).digest('hex') !== mode) {
    return { ok: false, body: raw, mode, accessKeyId };
  }
  return { ok: true, body: raw, mode, accessKeyId };
}

/** The data of a signed aws-chunked body, every chunk signature checked; undefined if one fails. */
async function signedChunks(raw: Buffer, seed: string, signer: SignatureV4, signingDate: Date) {
  let previous = seed;
  let at = 0;
  const data: Buffer[] = [];
  for (;;) {
    const eol = raw.indexOf('\r\n', at);
    const m = /^([0-9a-f]+);chunk-signature=([0-9a-f]{64})$/.exec(raw.subarray(at, eol).toString());
    if (!m) return undefined;
    const size = parseInt(m[1] as string, 16);
    const payload = raw.subarray(eol + 2, eol + 2 + size);
    const expected = await signer.sign(
      { headers: new Uint8Array(0), payload },
      { signingDate, priorSignature: previous },
    );
    if (expected !== m[2]) return undefined;
    previous = expected;
    data.push(payload);
    at = eol + 2 + size + 2;
    if (size === 0) return at === raw.length ? Buffer.concat(data) : undefined;
  }
}

/** The data of an aws-chunked body with unsigned chunks and a trailer (not checked). */
function unsignedChunks(raw: Buffer): Buffer {
  const data: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = raw.indexOf('\r\n', at);
    const size = parseInt(raw.subarray(at, eol).toString(), 16);
    if (!(size > 0)) return Buffer.concat(data);
    data.push(raw.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}
