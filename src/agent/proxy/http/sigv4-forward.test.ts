// present: aws-sigv4 through the HTTP handler behind a local listener (the stand-in for
// proxy-core's): the real AWS SDK v3 signs with placeholder keys, the handler re-signs with the
// brokered credentials, and the endpoint verifies with the SDK's own signer
// (@smithy/signature-v4) and the brokered key only — streamed uploads included.
import assert from 'node:assert/strict';
import http from 'node:http';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { CredentialValue } from '../../../core/access.ts';
import { startSigV4Endpoint, type SigV4Endpoint } from '../sigv4/testing/sigv4-endpoint.ts';
import { createHttpHandler } from './http-handler.ts';
import {
  serverWorkload,
  standInListener,
  StandInConnections,
} from './testing/stand-in-connections.ts';

const BROKERED = {
  accessKeyId: 'ASIABROKEREDEXAMPLE',
  secretAccessKey: 'brokered/secret/key+only/tessera/knows',
  sessionToken: 'brokered-session-token-5b7e',
};
let released: CredentialValue = { kind: 'aws', ...BROKERED };
let endpoint: SigV4Endpoint;
let listener: { port: number; close(): Promise<void> };

before(async () => {
  endpoint = await startSigV4Endpoint(BROKERED);
  const port = Number(new URL(endpoint.url).port);
  const w = serverWorkload({ name: 's3', host: '127.0.0.1', port, present: 'aws-sigv4' });
  const connections = new StandInConnections([w], () => ({ allow: released }));
  const handler = createHttpHandler();
  listener = await standInListener(connections, w, (s, conn) => handler.handle(s, conn));
});

after(async () => {
  await listener.close();
  await endpoint.close();
});

function s3(extra: Record<string, unknown> = {}): S3Client {
  return new S3Client({
    endpoint: `http://127.0.0.1:${listener.port}`,
    region: 'eu-west-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'PLACEHOLDER', secretAccessKey: 'placeholder' },
    maxAttempts: 1,
    ...extra,
  });
}

function raw(
  path: string,
  headers: http.OutgoingHttpHeaders,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: listener.port, path, headers, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('PutObject and GetObject are re-signed with the brokered key', async () => {
  const client = s3();
  await client.send(new PutObjectCommand({ Bucket: 'b', Key: 'a b+c.txt', Body: 'hello sigv4' }));
  assert.equal(endpoint.objects.get('/b/a%20b%2Bc.txt')?.toString(), 'hello sigv4');
  const got = await client.send(new GetObjectCommand({ Bucket: 'b', Key: 'a b+c.txt' }));
  assert.equal(await got.Body?.transformToString(), 'hello sigv4');
});

test('a streamed upload: aws-chunked with a trailing checksum (the SDK default)', async () => {
  const data = Buffer.alloc(300_000, 't');
  await s3().send(
    new PutObjectCommand({
      Bucket: 'b',
      Key: 'streamed',
      Body: Readable.from([data.subarray(0, 1000), data.subarray(1000)]),
      ContentLength: data.length,
    }),
  );
  assert.equal(endpoint.payloadModes.at(-1), 'STREAMING-UNSIGNED-PAYLOAD-TRAILER');
  assert.ok(endpoint.objects.get('/b/streamed')?.equals(data));
});

test('a streamed upload: UNSIGNED-PAYLOAD', async () => {
  const data = Buffer.alloc(200_000, 'u');
  await s3({ requestChecksumCalculation: 'WHEN_REQUIRED' }).send(
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

test('a request that is not SigV4 is 400 naming what is wrong, never forwarded', async () => {
  const before = endpoint.payloadModes.length;
  const none = await raw('/b/x', {});
  assert.equal(none.status, 400);
  assert.match(none.body, /no Authorization header/);
  const date = await raw('/b/x', {
    authorization:
      'AWS4-HMAC-SHA256 Credential=PLACEHOLDER/20240101/eu-west-1/s3/aws4_request, ' +
      `SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`,
    'x-amz-date': 'yesterday',
  });
  assert.equal(date.status, 400);
  assert.match(date.body, /malformed X-Amz-Date/);
  assert.equal(endpoint.payloadModes.length, before);
});

test('a credential that is not AWS is 502 naming the provider mismatch', async () => {
  released = { kind: 'token', token: 'not-aws' };
  try {
    await assert.rejects(
      s3().send(new GetObjectCommand({ Bucket: 'b', Key: 'a b+c.txt' })),
      (e: { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode === 502,
    );
    const r = await raw('/b/x', {});
    assert.match(r.body, /credential \(token\) cannot be presented as aws-sigv4/);
  } finally {
    released = { kind: 'aws', ...BROKERED };
  }
});
