// Cloud credentials from the agent's cloud endpoints over loopback HTTP (issue 12, "Performance":
// credentials served from the agent's cache per second vs a bare Node HTTP server answering a
// constant, ratio ≥ 0.5; cold path latency p50/p99).
// - agent, cached, for each cloud on the real cloud listener: AWS IMDSv2
//   `GET /latest/meta-data/iam/security-credentials/<role>` with a session token, GCE
//   `GET /computeMetadata/v1/instance/service-accounts/default/token` (Metadata-Flavor), Azure
//   IMDS `GET /metadata/identity/oauth2/token/?api-version&resource` (Metadata: true): loopback
//   TCP attestation of this process (pinned, reused per connection), the platform's header
//   checks, entry matching, the credential cache (a hit: the server's release is stood in, a hit
//   never reaches it), the platform's document rendered;
// - floor: a bare node:http server answering a constant document of the same size.
// Same client (keep-alive, 16 connections, 16 requests in flight), alternating rounds, best kept.
// - cold path: what a cache miss adds at the server — the access decision (policy index, as the
//   server decides) and the aws-sts provider's AssumeRoleWithWebIdentity at the AWS STS stand-in
//   (JWT-SVID minted and signed, the stand-in fetching the issuer's discovery document and JWKS
//   and verifying, XML answer parsed), a new client SPIFFE ID each time so no cache answers;
//   sequential, p50/p99 printed (the agent → server hop is not in it).
// Run: ./node_modules/.bin/node bench/cloud-credentials.bench.ts [ms-per-measurement]
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startCloudListener } from '../src/agent/cloud/cloud-listener.ts';
import { awsImdsEndpoint } from '../src/agent/cloud/aws/imds-endpoint.ts';
import { azureImdsEndpoint } from '../src/agent/cloud/azure/imds.ts';
import { gceMetadataEndpoint } from '../src/agent/cloud/gcp/metadata-server.ts';
import { testEntry, UID, world } from '../src/agent/credentials/testing/fixtures.ts';
import { coldPath } from './cloud-cold-path.ts';
import { compare, loadNote, measureAsync, percentiles, ratio } from './lib.ts';

const ms = Number(process.argv[2] ?? 2000);
const CONCURRENCY = 16;
const ROLE = 's3';
const PATH = `/latest/meta-data/iam/security-credentials/${ROLE}`;
const GCE_PATH = '/computeMetadata/v1/instance/service-accounts/default/token';
const AZURE_PATH =
  '/metadata/identity/oauth2/token/?api-version=2018-02-01&resource=https%3A%2F%2Fstorage.azure.com';
const TOKEN = `ya29.bench-${'t'.repeat(400)}`;

const w = world([testEntry('e-web', 'spiffe://example.org/web', [`unix:uid:${UID}`])]);
const expiresAt = Date.now() + 3_600_000;
w.server.answer = async (p) => ({
  kind: 'released',
  released: {
    credential: {
      value:
        p.server === ROLE
          ? {
              kind: 'aws',
              accessKeyId: 'ASIABENCHEXAMPLE0000',
              secretAccessKey: 's'.repeat(40),
              sessionToken: 't'.repeat(400),
            }
          : { kind: 'token', token: TOKEN },
      expiresAt,
      leaseId: '',
    },
    spiffeId: 'spiffe://example.org/web',
    server: p.server,
    present: '',
    policy: 'p',
    credentialProvider: 'aws',
    correlationId: p.correlationId,
  },
});
const quiet = () => {};
const log = { info: quiet, warn: quiet, debug: quiet };
const cloud = await startCloudListener({
  host: '127.0.0.1',
  port: 0,
  attestation: w.attestation,
  endpoints: [
    awsImdsEndpoint(),
    gceMetadataEndpoint({ serverWorkload: 'gcs', projectId: '', projectNumber: '', email: '' }),
    azureImdsEndpoint({ serverWorkload: 'blob' }),
  ],
  context: {
    credentials: w.credentials,
    identities: { fetchJwtSvids: () => Promise.reject(new Error('not used by this bench')) },
    log,
  },
});
const floorBody = JSON.stringify({ Code: 'Success', pad: 'x'.repeat(600) });
const floor = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': floorBody.length });
  res.end(floorBody);
});
await new Promise<void>((r) => floor.listen(0, '127.0.0.1', r));
const floorPort = (floor.address() as AddressInfo).port;

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
function call(port: number, method: string, path: string, headers: Record<string, string>) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent });
    req.once('error', reject);
    req.once('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.end();
  });
}

const put = await call(cloud.port, 'PUT', '/latest/api/token', {
  'x-aws-ec2-metadata-token-ttl-seconds': '21600',
});
const token = { 'x-aws-ec2-metadata-token': put.body };
const first = await call(cloud.port, 'GET', PATH, token);
if (first.status !== 200) throw new Error(`agent answered ${first.status}: ${first.body}`);

const gce = { 'metadata-flavor': 'Google' };
const azure = { metadata: 'true' };
for (const [p, h] of [
  [GCE_PATH, gce],
  [AZURE_PATH, azure],
] as const) {
  const r = await call(cloud.port, 'GET', p, h);
  if (r.status !== 200) throw new Error(`agent answered ${r.status} for ${p}: ${r.body}`);
}

/** A cached answer of the agent at `path`, checked. */
const cached = (name: string, path: string, headers: Record<string, string>, mark: string) => () =>
  measureAsync(
    name,
    async () => {
      const r = await call(cloud.port, 'GET', path, headers);
      if (r.status !== 200 || !r.body.includes(mark)) throw new Error(`agent answered ${r.status}`);
    },
    ms,
    CONCURRENCY,
  );

console.log(loadNote('before'));
const results = await compare(
  () =>
    measureAsync(
      'bare node:http, constant answer',
      async () => {
        if ((await call(floorPort, 'GET', PATH, token)).status !== 200) throw new Error('floor');
      },
      ms,
      CONCURRENCY,
    ),
  [
    cached('agent AWS IMDS credentials document (cache hit)', PATH, token, 'ASIABENCHEXAMPLE0000'),
    cached('agent GCE metadata token (cache hit)', GCE_PATH, gce, TOKEN),
    cached('agent Azure IMDS token (cache hit)', AZURE_PATH, azure, TOKEN),
  ],
);
ratio('agent AWS IMDS / bare node:http', results[0] ?? 0, results.baseline, 0.5);
ratio('agent GCE metadata / bare node:http', results[1] ?? 0, results.baseline, 0.5);
ratio('agent Azure IMDS / bare node:http', results[2] ?? 0, results.baseline, 0.5);
console.log(loadNote('after'));
agent.destroy();
await cloud.close();
floor.close();

const cold = await coldPath(Math.max(50, Math.round(ms / 10)));
const { p50, p99 } = percentiles(cold);
console.log(
  `cold path (access decision + aws-sts at the STS stand-in), ${cold.length} calls: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`,
);
