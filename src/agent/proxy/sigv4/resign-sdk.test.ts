// The real AWS SDK v3 signs with placeholder keys; a relay standing where proxy-http will
// (resignSigV4 between client and endpoint) re-signs with the brokered key; the endpoint verifies
// with the SDK's own signer (@smithy/signature-v4) and the brokered key only.
import { strict as assert } from 'node:assert';
import { request as httpRequest, createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { createHash, createHmac } from 'node:crypto';
import { isTesseraError } from '../../../core/errors.ts';
import { resignSigV4, type AwsCredentials } from './resign.ts';
import { startSigV4Endpoint, type SigV4Endpoint } from './testing/sigv4-endpoint.ts';

const BROKERED: AwsCredentials = {
  accessKeyId: 'ASIABROKEREDEXAMPLE',
  secretAccessKey: 'brokered/secret/key+only/tessera/knows',
  sessionToken: 'brokered-session-token',
};
const PLACEHOLDER = { accessKeyId: 'PLACEHOLDER', secretAccessKey: 'placeholder' };
const systemClock = { now: () => Date.now() };

/** Where proxy-http will stand: resignSigV4 between the client and the endpoint. */
async function startRelay(
  target: string,
  resign: boolean,
): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const [path, query = ''] = (req.url ?? '/').split(/\?(.*)/s) as [string, string?];
    const forward = resign
      ? resignSigV4(
          { method: req.method ?? '', path, query, headers: req.headers },
          req,
          BROKERED,
          {
            clock: systemClock,
          },
        )
      : Promise.resolve({ headers: req.headers as Record<string, string>, body: req });
    forward.then(
      ({ headers, body }) => {
        const up = httpRequest(`${target}${req.url}`, { method: req.method, headers }, (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        });
        up.on('error', () => res.destroy());
        body.on('error', (e) => {
          up.destroy();
          res.writeHead(400).end(String(e));
        });
        body.pipe(up);
      },
      (e: unknown) => res.writeHead(isTesseraError(e) ? 400 : 500).end((e as Error).message),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

function s3(endpoint: string, extra: Record<string, unknown> = {}): S3Client {
  return new S3Client({
    endpoint,
    region: 'eu-west-1',
    forcePathStyle: true,
    credentials: PLACEHOLDER,
    maxAttempts: 1,
    ...extra,
  });
}

describe('resignSigV4 with the AWS SDK v3 and an endpoint verifying with @smithy/signature-v4', () => {
  let endpoint: SigV4Endpoint;
  let relay: { url: string; server: Server };
  let plain: { url: string; server: Server };
  before(async () => {
    endpoint = await startSigV4Endpoint(BROKERED);
    relay = await startRelay(endpoint.url, true);
    plain = await startRelay(endpoint.url, false);
  });
  after(async () => {
    for (const r of [relay, plain]) {
      r.server.closeAllConnections();
      r.server.close();
    }
    await endpoint.close();
  });

  it('refuses the placeholder signature when nothing re-signs it (the check can fail)', async () => {
    await assert.rejects(
      s3(plain.url).send(new PutObjectCommand({ Bucket: 'b', Key: 'k', Body: 'x' })),
      /no|SignatureDoesNotMatch/,
    );
  });

  it('PutObject and GetObject with signed payload hashes', async () => {
    const client = s3(relay.url);
    await client.send(
      new PutObjectCommand({ Bucket: 'b', Key: 'dir/a b+c.txt', Body: 'hello sigv4' }),
    );
    assert.equal(endpoint.objects.get('/b/dir/a%20b%2Bc.txt')?.toString(), 'hello sigv4');
    const got = await client.send(new GetObjectCommand({ Bucket: 'b', Key: 'dir/a b+c.txt' }));
    assert.equal(await got.Body?.transformToString(), 'hello sigv4');
    assert.match(endpoint.payloadModes.at(-1) ?? '', /^[0-9a-f]{64}$/);
  });

  it('a streamed PutObject: UNSIGNED-PAYLOAD', async () => {
    const client = s3(relay.url, { requestChecksumCalculation: 'WHEN_REQUIRED' });
    const data = Buffer.alloc(200_000, 'u');
    await client.send(
      new PutObjectCommand({
        Bucket: 'b',
        Key: 'unsigned',
        Body: Readable.from([data]),
        ContentLength: data.length,
      }),
    );
    assert.equal(endpoint.payloadModes.at(-1), 'UNSIGNED-PAYLOAD');
    assert.ok(endpoint.objects.get('/b/unsigned')?.equals(data));
  });

  it('a streamed PutObject: aws-chunked with a trailing checksum (the SDK default)', async () => {
    const data = Buffer.alloc(300_000, 't');
    await s3(relay.url).send(
      new PutObjectCommand({
        Bucket: 'b',
        Key: 'trailer',
        Body: Readable.from([data.subarray(0, 1000), data.subarray(1000)]),
        ContentLength: data.length,
      }),
    );
    assert.equal(endpoint.payloadModes.at(-1), 'STREAMING-UNSIGNED-PAYLOAD-TRAILER');
    assert.ok(endpoint.objects.get('/b/trailer')?.equals(data));
  });

  it('a PutObject with signed chunks (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), signed by the SDK signer', async () => {
    const data = Buffer.alloc(150_000, 'c');
    const status = await signedChunkedPut(relay.url, '/b/chunked', data, [65536, 65536, 18928]);
    assert.equal(status, 200);
    assert.equal(endpoint.payloadModes.at(-1), 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD');
    assert.ok(endpoint.objects.get('/b/chunked')?.equals(data));
  });

  it('another service: path encoded again, query sorted, body hashed by the proxy', async () => {
    const signer = new SignatureV4({
      credentials: PLACEHOLDER,
      region: 'eu-west-1',
      service: 'execute-api',
      sha256: Sha256,
      applyChecksum: false,
    });
    const body = '{"items":[1,2,3]}';
    const host = new URL(relay.url);
    const signed = await signer.sign({
      method: 'POST',
      protocol: 'http:',
      hostname: host.hostname,
      port: Number(host.port),
      path: '/prod/caf%C3%A9/./x/../items',
      query: { b: '2', a: ['x y', '!'] },
      headers: {
        host: host.host,
        'content-type': 'application/json',
        'content-length': String(body.length),
      },
      body,
    });
    const status = await send(
      `${relay.url}/prod/caf%C3%A9/./x/../items?b=2&a=x%20y&a=%21`,
      'POST',
      signed.headers,
      Buffer.from(body),
    );
    assert.equal(status, 200);
    assert.equal(endpoint.payloadModes.at(-1), '');
  });

  it('a tampered chunked body is refused by the relay, not forwarded', async () => {
    const before = endpoint.payloadModes.length;
    const status = await signedChunkedPut(relay.url, '/b/bad', Buffer.alloc(10, 'c'), [10], (b) =>
      Buffer.concat([b.subarray(0, b.length - 2), Buffer.from('xx')]),
    );
    assert.notEqual(status, 200);
    assert.equal(endpoint.payloadModes.length, before);
    assert.equal(endpoint.objects.has('/b/bad'), false);
  });
});

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

/** A signed aws-chunked PutObject as SDKs that stream with chunk signatures send it. */
async function signedChunkedPut(
  base: string,
  path: string,
  data: Buffer,
  sizes: readonly number[],
  tamper: (body: Buffer) => Buffer = (b) => b,
): Promise<number> {
  const signer = new SignatureV4({
    credentials: PLACEHOLDER,
    region: 'eu-west-1',
    service: 's3',
    sha256: Sha256,
    uriEscapePath: false,
  });
  const signingDate = new Date();
  const host = new URL(base);
  const frame = (size: number, sig: string) => `${size.toString(16)};chunk-signature=${sig}\r\n`;
  const length = [...sizes, 0].reduce((n, s) => n + frame(s, '0'.repeat(64)).length + s + 2, 0);
  const signed = await signer.sign(
    {
      method: 'PUT',
      protocol: 'http:',
      hostname: host.hostname,
      path,
      query: {},
      headers: {
        host: host.host,
        'content-encoding': 'aws-chunked',
        'content-length': String(length),
        'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
        'x-amz-decoded-content-length': String(data.length),
      },
    },
    { signingDate },
  );
  let previous = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization))?.[1] ?? '';
  const parts: Buffer[] = [];
  let at = 0;
  for (const size of [...sizes, 0]) {
    const payload = data.subarray(at, at + size);
    at += size;
    previous = await signer.sign(
      { headers: new Uint8Array(0), payload },
      { signingDate, priorSignature: previous },
    );
    parts.push(Buffer.from(frame(size, previous)), payload, Buffer.from('\r\n'));
  }
  return send(`${base}${path}`, 'PUT', signed.headers, tamper(Buffer.concat(parts)));
}

function send(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: Buffer,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}
