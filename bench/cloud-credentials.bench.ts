// AWS credentials from the agent's cloud endpoints over loopback HTTP (issue 12, "Performance":
// credentials served from the agent's cache per second vs a bare Node HTTP server answering a
// constant, ratio ≥ 0.5).
// - agent: `GET /latest/meta-data/iam/security-credentials/<role>` with an IMDSv2 token, on the
//   real cloud listener: loopback TCP attestation of this process (pinned, reused per
//   connection), token check, entry matching, the credential cache (a hit: the server's release
//   is stood in, a hit never reaches it), the EC2 document rendered;
// - floor: a bare node:http server answering a constant document of the same size.
// Same client (keep-alive, 16 connections, 16 requests in flight), alternating rounds, best kept.
// Run: ./node_modules/.bin/node bench/cloud-credentials.bench.ts [ms-per-measurement]
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startCloudListener } from '../src/agent/cloud/cloud-listener.ts';
import { awsImdsEndpoint } from '../src/agent/cloud/aws/imds-endpoint.ts';
import { testEntry, UID, world } from '../src/agent/credentials/testing/fixtures.ts';
import { compare, loadNote, measureAsync, ratio } from './lib.ts';

const ms = Number(process.argv[2] ?? 2000);
const CONCURRENCY = 16;
const ROLE = 's3';
const PATH = `/latest/meta-data/iam/security-credentials/${ROLE}`;

const w = world([testEntry('e-web', 'spiffe://example.org/web', [`unix:uid:${UID}`])]);
const expiresAt = Date.now() + 3_600_000;
w.server.answer = async (p) => ({
  kind: 'released',
  released: {
    credential: {
      value: {
        kind: 'aws',
        accessKeyId: 'ASIABENCHEXAMPLE0000',
        secretAccessKey: 's'.repeat(40),
        sessionToken: 't'.repeat(400),
      },
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
  endpoints: [awsImdsEndpoint()],
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
    () =>
      measureAsync(
        'agent IMDS credentials document (cache hit)',
        async () => {
          const r = await call(cloud.port, 'GET', PATH, token);
          if (r.status !== 200 || !r.body.includes('ASIABENCHEXAMPLE0000')) {
            throw new Error(`agent answered ${r.status}`);
          }
        },
        ms,
        CONCURRENCY,
      ),
  ],
);
ratio('agent IMDS / bare node:http', results[0] ?? 0, results.baseline, 0.5);
console.log(loadNote('after'));
agent.destroy();
await cloud.close();
floor.close();
