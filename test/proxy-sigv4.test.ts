// Black-box: `present: aws-sigv4` end to end (docs/injection.md "aws-sigv4"). A real server (an
// OIDC issuer on its public listener), a real agent with local listeners, the real CLI, and the
// AWS STS stand-in, which trusts the server only through its discovery document and JWKS: the
// `aws-sts` credential provider exchanges the client's JWT-SVID for AWS credentials there. The
// application is the AWS SDK v3, unmodified, with placeholder keys, pointed at the listeners
// (AWS_ENDPOINT_URL style, S3 path-style); the server workloads are an HTTPS endpoint (its own
// test CA in `tls_ca`) that verifies SigV4 with the SDK's own signer and the secret of the access
// key STS issued — and knows no other key:
// - S3 PutObject/GetObject, and streamed uploads (aws-chunked with a checksum trailer, the SDK's
//   default for a stream body; UNSIGNED-PAYLOAD), re-signed with the brokered key and token;
// - STS GetCallerIdentity (another service: its path rules, a form body with its hash);
// - the secret key and the session token never in the agent's or the server's log.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import {
  startSigV4Endpoint,
  type SigV4Endpoint,
} from '../src/agent/proxy/sigv4/testing/sigv4-endpoint.ts';
import {
  startAwsStsStandIn,
  type AwsStsStandIn,
} from '../src/plugins/credential-providers/testing/aws-sts-stand-in.ts';
import { makeTlsFiles } from './helpers/https.ts';
import { freePort, waitFor } from './helpers/ports.ts';
import { startProxyStack, type ProxyStack } from './helpers/proxy-stack.ts';
import { CHAINED, DEADLINE_MS } from './helpers/serving-agent.ts';

const ME = 'spiffe://example.org/proxy/aws-app';
const ROLE = 'arn:aws:iam::123456789012:role/proxy-s3';
const PLACEHOLDER = { accessKeyId: 'PLACEHOLDER', secretAccessKey: 'placeholder' };
const SDK = { region: 'eu-west-1', credentials: PLACEHOLDER, maxAttempts: 1 };

describe('proxy: aws-sigv4 with the AWS SDK and aws-sts credentials', CHAINED, () => {
  let stack: ProxyStack;
  let sts: AwsStsStandIn;
  let endpoint: SigV4Endpoint;
  let s3Url: string;
  /** The credentials STS issued (to this client: the only subject its role admits). */
  const issued = () => {
    assert.equal(sts.issued.length, 1, 'one STS exchange, then the agent’s cache');
    return sts.issued[0]!;
  };
  const s3 = (extra: Record<string, unknown> = {}) =>
    new S3Client({ ...SDK, endpoint: s3Url, forcePathStyle: true, ...extra });

  before(async () => {
    const publicPort = await freePort();
    const issuer = `http://127.0.0.1:${publicPort}`;
    sts = await startAwsStsStandIn({
      arn: ROLE,
      issuer,
      audience: 'sts.amazonaws.com',
      subjects: [ME],
    });
    stack = await startProxyStack({
      name: 'sigv4',
      server: { config: { public_listen: `127.0.0.1:${publicPort}` } },
      clients: [ME],
      beforeAgent: async ({ dir, ok }) => {
        const tls = makeTlsFiles(dir);
        const tlsCa = path.join(dir, 'endpoint-ca.pem');
        writeFileSync(tlsCa, tls.caPem);
        // AWS verifies with the secret of the key it issued: the endpoint looks it up the same way.
        endpoint = await startSigV4Endpoint((id) => sts.issued.find((c) => c.accessKeyId === id), {
          tls: { cert: readFileSync(tls.certFile, 'utf8'), key: readFileSync(tls.keyFile, 'utf8') },
        });
        const port = new URL(endpoint.url).port;
        await ok(
          ...['credential-provider', 'create', '--name', 'aws', '--type', 'aws-sts'],
          ...['--set', `role_arn=${ROLE}`, '--set', `sts_endpoint=${sts.url}`],
        );
        for (const name of ['s3', 'sts']) {
          await ok(
            ...['server-workload', 'create', '--name', name, '--host', '127.0.0.1'],
            ...['--port', port, '--protocol', 'https', '--present', 'aws-sigv4'],
            ...['--tls-ca', tlsCa],
          );
          await ok(
            ...['access-policy', 'create', '--name', `me-${name}`, '--client', ME],
            ...['--server', name, '--credential-provider', 'aws'],
          );
        }
      },
      listeners: ['s3', 'sts'],
    });
    s3Url = `http://127.0.0.1:${stack.port('s3')}`;
  });

  after(async () => {
    await stack?.stop();
    await endpoint?.close();
    await sts?.close();
  });

  it('PutObject and GetObject: re-signed with the key and token STS issued', async () => {
    // The agent learns the server workloads from the server shortly after it starts.
    let last: unknown;
    await waitFor(async () => {
      try {
        await s3().send(new PutObjectCommand({ Bucket: 'b', Key: 'a b.txt', Body: 'hello' }));
        return true;
      } catch (e) {
        last = e;
        return false;
      }
    }, DEADLINE_MS).catch(() => assert.fail(`PutObject never went through: ${String(last)}`));
    assert.equal(endpoint.objects.get('/b/a%20b.txt')?.toString(), 'hello');
    const got = await s3().send(new GetObjectCommand({ Bucket: 'b', Key: 'a b.txt' }));
    assert.equal(await got.Body?.transformToString(), 'hello');
    const key = issued().accessKeyId;
    assert.deepEqual(endpoint.accessKeyIds.slice(-2), [key, key]);
    assert.equal(issued().subject, ME);
  });

  it('streamed uploads: aws-chunked with a checksum trailer, and UNSIGNED-PAYLOAD', async () => {
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

    const more = Buffer.alloc(200_000, 'u');
    await s3({ requestChecksumCalculation: 'WHEN_REQUIRED' }).send(
      new PutObjectCommand({
        Bucket: 'b',
        Key: 'unsigned',
        Body: Readable.from([more]),
        ContentLength: more.length,
      }),
    );
    assert.equal(endpoint.payloadModes.at(-1), 'UNSIGNED-PAYLOAD');
    assert.ok(endpoint.objects.get('/b/unsigned')?.equals(more));
    assert.equal(endpoint.accessKeyIds.at(-1), issued().accessKeyId);
  });

  it('another service (STS GetCallerIdentity, a form POST): re-signed as that service', async () => {
    const client = new STSClient({ ...SDK, endpoint: `http://127.0.0.1:${stack.port('sts')}` });
    const who = await client.send(new GetCallerIdentityCommand({}));
    assert.equal(who.Arn, `arn:aws:sts::123456789012:assumed-role/test/${issued().accessKeyId}`);
    // The SDK declares the body's SHA-256 (the endpoint checks it against the body).
    assert.match(endpoint.payloadModes.at(-1) ?? '', /^[0-9a-f]{64}$/);
  });

  it('never logs the secret key or the session token', () => {
    const { secretAccessKey, sessionToken } = issued();
    for (const [where, text] of [
      ['agent', stack.agent.output()],
      ['server', stack.server.output()],
    ] as const) {
      assert.ok(text.length > 0);
      assert.ok(!text.includes(secretAccessKey), `the secret key is in the ${where} log`);
      assert.ok(!text.includes(sessionToken), `the session token is in the ${where} log`);
    }
  });
});
