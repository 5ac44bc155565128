// Black-box: two Tessera trust domains on one machine federate both ways, through the CLI and the
// bundle endpoints only. A fetches B's bundle over https_spiffe (B's API listener, authenticated
// by B's server SVID); B fetches A's over https_web (A's public listener, a test WebPKI CA). A
// workload of A and one of B then complete mTLS with their own SVIDs, A validates B's JWT-SVID
// through its agent, and a CA rotation in B reaches A's workload by polling alone.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { derToPem } from '../src/crypto/x509/pem.ts';
import { adminClients, entry } from './helpers/admin.ts';
import { startAgent, type AgentProcess } from './helpers/agent-process.ts';
import { makeTlsFiles } from './helpers/https.ts';
import { freePort } from './helpers/ports.ts';
import { CLI, startServer, type ServerProcess } from './helpers/server-process.ts';
import type grpc from '@grpc/grpc-js';
import {
  fetchX509,
  header,
  unary,
  workloadClient,
  type WorkloadClient,
  type X509Response,
} from './helpers/workload-grpc.ts';

const run = promisify(execFile);
const UID = process.getuid?.() ?? 0;
/** The shortest poll interval a relationship honours (docs/federation.md): rotation test bound. */
const POLL_BOUND_MS = 40_000;

/** `tessera <args>` against a server's admin socket; stdout. */
async function cli(server: ServerProcess, ...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [CLI, ...args], {
    env: { ...process.env, TESSERA_ADMIN_SOCKET: server.adminSocket },
  });
  return stdout;
}

/** Splits concatenated DER certificates (the Workload API's bundle encoding). */
function splitDer(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length;) {
    const lenByte = buf[i + 1] ?? 0;
    const n = lenByte & 0x80 ? lenByte & 0x7f : 0;
    const len = n === 0 ? lenByte : buf.subarray(i + 2, i + 2 + n).reduce((a, b) => a * 256 + b, 0);
    out.push(buf.subarray(i, i + 2 + n + len));
    i += 2 + n + len;
  }
  return out;
}

const pemOf = (der: Buffer) => splitDer(der).map((d) => derToPem(d));

/** The first FetchX509SVID message satisfying `pred`, within `ms` (retried while none arrives). */
async function x509Until(
  client: WorkloadClient,
  pred: (m: X509Response) => boolean,
  ms: number,
): Promise<X509Response> {
  const deadline = Date.now() + ms;
  let last = 'no message';
  while (Date.now() < deadline) {
    const s = fetchX509(client);
    try {
      for (;;) {
        const m = await s.next(Math.max(1, deadline - Date.now()));
        if (pred(m)) return m;
        last = `federated bundles: ${Object.keys(m.federated_bundles).join(', ') || 'none'}`;
      }
    } catch (e) {
      last = (e as Error).message;
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      s.cancel();
    }
  }
  throw new Error(`condition not met within ${ms} ms (${last})`);
}

interface Domain {
  server: ServerProcess;
  agent: AgentProcess;
  client: WorkloadClient;
}

async function domain(
  trustDomain: string,
  workloadId: string,
  federatesWith: string,
  config: Record<string, unknown>,
): Promise<Domain> {
  const server = await startServer({ trustDomain, config });
  const admin = adminClients(server.adminSocket);
  const t = await admin.agents.createJoinToken({});
  const agent = await startAgent(server, { joinToken: t.token });
  await admin.entries.batchCreateEntry({
    entries: [
      entry(workloadId, t.agentSpiffeId, [`unix:uid:${UID}`], { federatesWith: [federatesWith] }),
    ],
  });
  return { server, agent, client: workloadClient(agent.socketPath) };
}

describe('federation between two Tessera trust domains', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-fed-'));
  let a: Domain;
  let b: Domain;

  before(async () => {
    const web = makeTlsFiles(dir);
    const caFile = path.join(dir, 'web-ca.pem');
    writeFileSync(caFile, web.caPem);
    const publicPort = await freePort();
    a = await domain('a.test', 'spiffe://a.test/client', 'b.test', {
      public_listen: `127.0.0.1:${publicPort}`,
      public_cert_file: web.certFile,
      public_key_file: web.keyFile,
      bundle_refresh_hint: '10s',
    });
    b = await domain('b.test', 'spiffe://b.test/server', 'a.test', {
      federation: { ca_file: caFile },
      bundle_refresh_hint: '10s',
    });
    // A → B over https_spiffe, bootstrapped with B's bundle as B's operator hands it over.
    const bBundle = path.join(dir, 'b-bundle.json');
    writeFileSync(bBundle, await cli(b.server, 'bundle', 'show', '--format', 'spiffe'));
    await cli(
      a.server,
      'federation',
      'create',
      '--trust-domain',
      'b.test',
      '--bundle-endpoint-url',
      `https://${b.server.apiAddr}/bundle`,
      '--profile',
      'https_spiffe',
      '--endpoint-spiffe-id',
      'spiffe://b.test/spire/server',
      '--trust-bundle',
      bBundle,
    );
    // B → A over https_web: no bootstrap bundle, WebPKI authenticates A's public listener.
    await cli(
      b.server,
      'federation',
      'create',
      '--trust-domain',
      'a.test',
      '--bundle-endpoint-url',
      `https://127.0.0.1:${publicPort}/bundle`,
      '--profile',
      'https_web',
    );
  });

  after(async () => {
    for (const d of [a, b]) {
      d?.client.close();
      await d?.agent.stop();
      await d?.server.stop();
    }
  });

  it('workloads of A and B complete mTLS with their own SVIDs and the federated bundles', async () => {
    const hasFed = (td: string) => (m: X509Response) =>
      m.svids.length > 0 && m.federated_bundles[td] !== undefined;
    const [ma, mb] = await Promise.all([
      x509Until(a.client, hasFed('spiffe://b.test'), 20_000),
      x509Until(b.client, hasFed('spiffe://a.test'), 20_000),
    ]);
    const sa = ma.svids[0]!;
    const sb = mb.svids[0]!;
    assert.equal(sa.spiffe_id, 'spiffe://a.test/client');
    assert.equal(sb.spiffe_id, 'spiffe://b.test/server');
    // The federated bundle A's workload holds is B's own CA set, and vice versa.
    assert.deepEqual(pemOf(ma.federated_bundles['spiffe://b.test']!), pemOf(sb.bundle));
    assert.deepEqual(pemOf(mb.federated_bundles['spiffe://a.test']!), pemOf(sa.bundle));

    const key = (der: Buffer) =>
      createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
        .export({ type: 'pkcs8', format: 'pem' })
        .toString();
    const server = tls.createServer({
      cert: pemOf(sb.x509_svid).join(''),
      key: key(sb.x509_svid_key),
      ca: pemOf(mb.federated_bundles['spiffe://a.test']!),
      requestCert: true,
      rejectUnauthorized: true,
    });
    const peerSeenByB = new Promise<string>((resolve) =>
      server.on('secureConnection', (s) => {
        resolve(s.getPeerX509Certificate()?.subjectAltName ?? '');
        s.end('hello from b.test');
      }),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const { peer, data } = await new Promise<{ peer: string; data: string }>(
        (resolve, reject) => {
          const s = tls.connect({
            host: '127.0.0.1',
            port,
            cert: pemOf(sa.x509_svid).join(''),
            key: key(sa.x509_svid_key),
            ca: pemOf(ma.federated_bundles['spiffe://b.test']!),
            // SPIFFE authorizes by the URI SAN, not by host name.
            checkServerIdentity: () => undefined,
          });
          let data = '';
          s.on('data', (d: Buffer) => (data += d.toString()));
          s.on('end', () =>
            resolve({ peer: s.getPeerX509Certificate()?.subjectAltName ?? '', data }),
          );
          s.on('error', reject);
        },
      );
      assert.equal(peer, 'URI:spiffe://b.test/server');
      assert.equal(data, 'hello from b.test');
      assert.equal(await peerSeenByB, 'URI:spiffe://a.test/client');
    } finally {
      server.close();
    }
  });

  it("A's agent validates B's JWT-SVID; A's workload gets B's JWT keys", async () => {
    const { svids } = await unary<{ svids: { svid: string }[] }>(b.client, 'FetchJWTSVID', {
      audience: ['a.test/client'],
    });
    const token = svids[0]!.svid;
    const v = await unary<{ spiffe_id: string; claims: { fields: Record<string, unknown> } }>(
      a.client,
      'ValidateJWTSVID',
      { audience: 'a.test/client', svid: token },
    );
    assert.equal(v.spiffe_id, 'spiffe://b.test/server');
    await assert.rejects(
      unary(a.client, 'ValidateJWTSVID', { audience: 'someone-else', svid: token }),
      /InvalidArgument|INVALID_ARGUMENT|audience/i,
    );
    // Independently of the agent: jose verifies it with the JWKS A's workload receives for b.test.
    const call = (
      a.client.FetchJWTBundles as (
        r: object,
        m: grpc.Metadata,
      ) => grpc.ClientReadableStream<{
        bundles: Record<string, Buffer>;
      }>
    )({}, header());
    const bundles = await new Promise<{ bundles: Record<string, Buffer> }>((resolve, reject) => {
      call.once('data', resolve);
      call.once('error', reject);
    }).finally(() => call.cancel());
    const jwks = JSON.parse(bundles.bundles['spiffe://b.test']!.toString()) as {
      keys: object[];
    };
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks as never), {
      audience: 'a.test/client',
    });
    assert.equal(payload.sub, 'spiffe://b.test/server');
  });

  it("a CA rotation in B reaches A's workload by polling", async () => {
    const before = await x509Until(a.client, (m) => m.svids.length > 0, 10_000);
    const known = new Set(pemOf(before.federated_bundles['spiffe://b.test']!));
    const prepared = await adminClients(b.server.adminSocket).authorities.prepareAuthority({
      kind: 'x509',
    });
    assert.ok(prepared.authority, 'B prepared a new X.509 authority');
    const after = await x509Until(
      a.client,
      (m) => {
        const fed = m.federated_bundles['spiffe://b.test'];
        return fed !== undefined && pemOf(fed).some((p) => !known.has(p));
      },
      POLL_BOUND_MS,
    );
    const fresh = pemOf(after.federated_bundles['spiffe://b.test']!).filter((p) => !known.has(p));
    assert.equal(fresh.length, 1);
    assert.match(new X509Certificate(fresh[0]!).subjectAltName ?? '', /URI:spiffe:\/\/b\.test/);
  });
});
