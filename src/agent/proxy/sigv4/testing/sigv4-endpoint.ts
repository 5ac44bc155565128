// A local S3-like endpoint that verifies SigV4 with the AWS SDK's own signer
// (@smithy/signature-v4) and the brokered key — independent of the proxy's re-signer. It
// answers PutObject (plain, UNSIGNED-PAYLOAD, aws-chunked signed or with an unsigned trailer) and
// GetObject, and any other service's request with 200 once its signature holds; a signature that
// does not verify gets 403 SignatureDoesNotMatch. For the re-signer's tests and proxy-http's.
import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
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
  close(): Promise<void>;
}

const AUTH =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/;

export async function startSigV4Endpoint(creds: AwsCredentials): Promise<SigV4Endpoint> {
  const objects = new Map<string, Buffer>();
  const payloadModes: string[] = [];
  const server: Server = createServer((req, res) => {
    verify(req, creds).then(
      ({ ok, body, mode }) => {
        if (!ok) {
          res.writeHead(403, { 'content-type': 'application/xml' });
          res.end('<Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error>');
          return;
        }
        payloadModes.push(mode);
        const path = (req.url ?? '/').split('?')[0] as string;
        if (req.method === 'PUT') {
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
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    objects,
    payloadModes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function verify(req: IncomingMessage, creds: AwsCredentials) {
  const raw = await buffer(req);
  const m = AUTH.exec(req.headers.authorization ?? '');
  if (!m) return { ok: false, body: raw, mode: '' };
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
    return { ok: false, body: raw, mode };
  }
  if (mode === 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD') {
    const seed = m[6] as string;
    const body = await signedChunks(raw, seed, signer, signingDate);
    return { ok: body !== undefined, body: body ?? raw, mode };
  }
  if (mode === 'STREAMING-UNSIGNED-PAYLOAD-TRAILER')
    return { ok: true, body: unsignedChunks(raw), mode };
  if (/^[0-9a-f]{64}$/.test(mode) && createHash('sha256').update(raw).digest('hex') !== mode) {
    return { ok: false, body: raw, mode };
  }
  return { ok: true, body: raw, mode };
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
