// Black-box: a real server and a real agent process; workloads talk to the agent's Workload API
// with a plain grpc-js client generated from the .proto; OpenSSL and jose verify what they get.
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { spawn } from 'node:child_process';
import tls from 'node:tls';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, jwtVerify } from 'jose';
import {
  JwtSource,
  JwtSvidVerifier,
  X509Source,
  authorizeId,
  authorizeMemberOf,
  connectMtls,
  createMtlsServer,
  peerSpiffeId,
} from '../src/client/workload/index.ts';
import { derToPem } from '../src/crypto/x509/pem.ts';
import { NOT_BEFORE_SKEW_MS } from '../src/server/svid/minter.ts';
import { adminClients, entry, type AdminClients } from './helpers/admin.ts';
import { startAgent, type AgentProcess } from './helpers/agent-process.ts';
import { makeX509PopCerts, opensslVerify } from './helpers/openssl.ts';
import { waitFor } from './helpers/ports.ts';
import { REPO, startServer, type ServerProcess } from './helpers/server-process.ts';
import {
  fetchX509,
  header,
  unary,
  workloadClient,
  type X509Response,
} from './helpers/workload-grpc.ts';
import grpc from '@grpc/grpc-js';

const UID = process.getuid?.() ?? 0;
// Rotation and expiry are observed on real clocks, so every wait polls for a condition with a
// generous deadline (the machine may be slow and busy), and no TTL has to outlive a step of
// unknown length: a short-lived agent SVID is only renewed, never left alone across a server
// outage or a stopped agent's restart; an outage is survived by an agent whose SVID outlives it.
const DEADLINE_MS = 60_000;
/** Each test chains a few bounded waits: room for all of them. */
const CHAINED = { timeout: 5 * DEADLINE_MS };

/** Splits concatenated DER certificates. */
function splitDer(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  while (i < buf.length) {
    const lenByte = buf[i + 1] ?? 0;
    const n = lenByte & 0x80 ? lenByte & 0x7f : 0;
    const len = n === 0 ? lenByte : buf.subarray(i + 2, i + 2 + n).reduce((a, b) => a * 256 + b, 0);
    const end = i + 2 + n + len;
    out.push(buf.subarray(i, end));
    i = end;
  }
  return out;
}

const pem = (ders: Buffer[]) => ders.map((d) => derToPem(d)).join('');

describe('agent black-box', () => {
  let server: ServerProcess;
  let admin: AdminClients;
  let agent: AgentProcess;
  let agentId: string;

  before(async () => {
    server = await startServer({ config: { default_x509_svid_ttl: '1h' } });
    admin = adminClients(server.adminSocket);
    const t = await admin.agents.createJoinToken({});
    agentId = t.agentSpiffeId;
    agent = await startAgent(server, { joinToken: t.token });
  });

  after(async () => {
    await agent?.stop();
    await server?.stop();
  });

  // How soon a change arrives is measured by bench/push.bench.ts (p99 against its target), not
  // here: the agent never polls, so a change reaching a stream opened before it was made was
  // pushed.
  it('serves an X.509-SVID that OpenSSL verifies, and entry changes reach the open stream', async () => {
    const created = await admin.entries.batchCreateEntry({
      entries: [entry('spiffe://example.org/web', agentId, [`unix:uid:${UID}`], { hint: 'web' })],
    });
    const webId = created.results[0]!.entry!.id;
    const client = workloadClient(agent.socketPath);
    // The entry reaches the agent asynchronously: retry the stream until an identity arrives.
    const { stream, first } = await firstSvid(client);
    assert.equal(first.svids.length, 1);
    const svid = first.svids[0]!;
    assert.equal(svid.spiffe_id, 'spiffe://example.org/web');
    assert.equal(svid.hint, 'web');
    const chain = splitDer(svid.x509_svid);
    const bundle = splitDer(svid.bundle);
    assert.equal(opensslVerify(pem(bundle), pem(chain)).ok, true);
    const key = createPrivateKey({ key: svid.x509_svid_key, format: 'der', type: 'pkcs8' });
    assert.ok(new X509Certificate(chain[0]!).checkPrivateKey(key));

    await admin.entries.batchCreateEntry({
      entries: [entry('spiffe://example.org/db', agentId, [`unix:uid:${UID}`], { hint: 'db' })],
    });
    const second = await stream.next(DEADLINE_MS);
    assert.deepEqual(
      second.svids.map((s) => s.spiffe_id),
      ['spiffe://example.org/web', 'spiffe://example.org/db'],
    );

    await admin.entries.batchDeleteEntry({ ids: [webId] });
    const third = await stream.next(DEADLINE_MS);
    assert.deepEqual(
      third.svids.map((s) => s.spiffe_id),
      ['spiffe://example.org/db'],
    );
    stream.cancel();
    client.close();
  });

  it('mints JWT-SVIDs that ValidateJWTSVID and jose accept against FetchJWTBundles', async () => {
    const client = workloadClient(agent.socketPath);
    const res = await unary<{ svids: { spiffe_id: string; svid: string }[] }>(
      client,
      'FetchJWTSVID',
      { audience: ['db'] },
    );
    assert.equal(res.svids[0]?.spiffe_id, 'spiffe://example.org/db');
    const token = res.svids[0]!.svid;
    const again = await unary<{ svids: { svid: string }[] }>(client, 'FetchJWTSVID', {
      audience: ['db'],
    });
    assert.equal(again.svids[0]?.svid, token, 'cached until half its lifetime');
    const validated = await unary<{ spiffe_id: string; claims: unknown }>(
      client,
      'ValidateJWTSVID',
      { audience: 'db', svid: token },
    );
    assert.equal(validated.spiffe_id, 'spiffe://example.org/db');
    const bundles = await new Promise<{ bundles: Record<string, Buffer> }>((resolve, reject) => {
      const call = (
        client.FetchJWTBundles as (
          r: object,
          m: grpc.Metadata,
        ) => grpc.ClientReadableStream<{ bundles: Record<string, Buffer> }>
      )({}, header());
      call.once('data', (m) => {
        resolve(m);
        call.cancel();
      });
      call.once('error', (e) => (String(e).includes('Cancelled') ? undefined : reject(e)));
    });
    const jwks = JSON.parse(bundles.bundles['spiffe://example.org']!.toString('utf8'));
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { audience: 'db' });
    assert.equal(payload.sub, 'spiffe://example.org/db');
    await assert.rejects(
      unary(client, 'FetchJWTSVID', { audience: [] }),
      /INVALID_ARGUMENT|audience/,
    );
    await assert.rejects(
      unary(client, 'FetchJWTSVID', { audience: ['x'] }, new grpc.Metadata()),
      (e: { code: number }) => e.code === 3,
    );
    client.close();
  });

  it('completes a TLS handshake between two workloads using fetched SVIDs', async () => {
    const client = workloadClient(agent.socketPath);
    const s = fetchX509(client);
    const msg = await s.next();
    s.cancel();
    client.close();
    const v = msg.svids[0]!;
    const opts = {
      key: createPrivateKey({ key: v.x509_svid_key, format: 'der', type: 'pkcs8' }).export({
        type: 'pkcs8',
        format: 'pem',
      }),
      cert: pem(splitDer(v.x509_svid)),
      ca: pem(splitDer(v.bundle)),
    };
    const srv = tls.createServer({ ...opts, requestCert: true, rejectUnauthorized: true }, (sock) =>
      sock.end('hello'),
    );
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    const got = await new Promise<string>((resolve, reject) => {
      const c = tls.connect(
        { ...opts, host: '127.0.0.1', port, checkServerIdentity: () => undefined },
        () => {
          let data = '';
          c.on('data', (d) => (data += d));
          c.on('end', () => resolve(data));
        },
      );
      c.on('error', reject);
    });
    srv.close();
    assert.equal(got, 'hello');
  });

  it(
    'gives a process of another uid its own identity or PermissionDenied, never ours',
    { skip: UID !== 0 && 'needs root to run a child as another uid' },
    async () => {
      const script = path.join(REPO, 'test/helpers/fetch-x509-child.ts');
      const runAs = (uid: number) =>
        new Promise<string>((resolve) => {
          const p = spawn(process.execPath, [script, agent.socketPath], {
            uid,
            gid: uid,
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let out = '';
          p.stdout.on('data', (d) => (out += d));
          p.stderr.on('data', (d) => (out += d));
          p.on('exit', () => resolve(out.trim()));
        });
      assert.match(await runAs(65534), /^error 7 /);
      await admin.entries.batchCreateEntry({
        entries: [entry('spiffe://example.org/nobody', agentId, ['unix:uid:65534'])],
      });
      let out = '';
      for (let i = 0; i < 30 && !out.startsWith('ok '); i++) {
        out = await runAs(65534);
        if (!out.startsWith('ok ')) await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(out, 'ok spiffe://example.org/nobody');
    },
  );

  it('serves the workload SDK: X509Source, mTLS authorized by SPIFFE ID, JWT-SVID verification', async () => {
    const address = `unix://${agent.socketPath}`;
    const source = await X509Source.open({ address, timeoutMs: 10_000 });
    const jwts = await JwtSource.open({ address, timeoutMs: 10_000 });
    try {
      assert.equal(source.getX509Svid().spiffeId, 'spiffe://example.org/db');
      const server = createMtlsServer(source, authorizeMemberOf('example.org'), (sock) =>
        sock.end(`hello ${peerSpiffeId(sock)}`),
      );
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as { port: number }).port;
      const sock = await connectMtls(source, authorizeId('spiffe://example.org/db'), {
        host: '127.0.0.1',
        port,
      });
      const got = await new Promise<string>((resolve) => {
        let data = '';
        sock.on('data', (d) => (data += d));
        sock.on('end', () => resolve(data));
      });
      assert.equal(got, 'hello spiffe://example.org/db');
      await assert.rejects(
        connectMtls(source, authorizeId('spiffe://example.org/other'), { host: '127.0.0.1', port }),
      );
      server.close();
      const jwt = await jwts.fetchJwtSvid({ audience: 'api' });
      const verifier = new JwtSvidVerifier({ bundles: jwts, audience: 'api' });
      assert.equal((await verifier.verify(jwt.token)).spiffeId, 'spiffe://example.org/db');
    } finally {
      await source.close();
      await jwts.close();
    }
  });

  it('keeps serving cached SVIDs while the server is away, and resumes when it returns', async () => {
    await server.stop();
    const client = workloadClient(agent.socketPath);
    const s = fetchX509(client);
    const msg = await s.next();
    assert.ok(msg.svids.some((v) => v.spiffe_id === 'spiffe://example.org/db'));
    s.cancel();
    await server.restart();
    // A new entry shows the agent reconnected to the restarted server.
    await admin.entries.batchCreateEntry({
      entries: [entry('spiffe://example.org/after', agentId, [`unix:uid:${UID}`])],
    });
    const s2 = fetchX509(client);
    let seen = false;
    for (let i = 0; i < 40 && !seen; i++) {
      const m = await s2.next(30_000);
      seen = m.svids.some((v) => v.spiffe_id === 'spiffe://example.org/after');
    }
    s2.cancel();
    client.close();
    assert.ok(seen, 'the agent synced again after the server returned');
  });

  it('reuses its persisted agent SVID after a restart, and exits with a clear error once banned', async () => {
    await agent.stop();
    await agent.restart();
    assert.match(agent.output(), /reusing the persisted agent SVID/);
    await admin.agents.banAgent({ spiffeId: agentId });
    const code = await agent.exited();
    assert.equal(code, 5);
    assert.match(agent.output(), /is banned/);
  });
});

const leafOf = (m: X509Response) => new X509Certificate(splitDer(m.svids[0]!.x509_svid)[0]!);

/**
 * The first FetchX509SVID message carrying an SVID: the stream is opened again while the agent
 * has none for this process yet (its entry still syncing), within the deadline.
 */
async function firstSvid(
  client: ReturnType<typeof workloadClient>,
): Promise<{ stream: ReturnType<typeof fetchX509>; first: X509Response }> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const stream = fetchX509(client);
    const first = await stream.next(5000).catch(() => null);
    if (first && first.svids.length > 0) return { stream, first };
    stream.cancel();
    if (Date.now() > deadline) throw new Error(`no X.509-SVID within ${DEADLINE_MS} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The next message on `stream` with an SVID that `accept`s, within the deadline. */
async function nextSvid(
  stream: ReturnType<typeof fetchX509>,
  accept: (leaf: X509Certificate) => boolean,
  within = DEADLINE_MS,
): Promise<X509Response> {
  const deadline = Date.now() + within;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no such X.509-SVID within ${within} ms`);
    const m = await stream.next(left);
    if (m.svids.length > 0 && accept(leafOf(m))) return m;
  }
}

describe('agent rotation', () => {
  // Workload SVIDs of 20 s (rotated after about 10 s), agent SVIDs of 20 s (renewed after 10 s):
  // lifetimes far above the backdated notBefore's 10 s (core/svid-life.ts), and half of each
  // leaves the agent 10 s for a renewal however slow the machine is.
  const TTL_S = 20;
  let server: ServerProcess;
  let agent: AgentProcess;

  before(async () => {
    server = await startServer({ config: { agent_svid_ttl: `${TTL_S}s` } });
    const admin = adminClients(server.adminSocket);
    const t = await admin.agents.createJoinToken({});
    agent = await startAgent(server, { joinToken: t.token });
    await admin.entries.batchCreateEntry({
      entries: [
        entry('spiffe://example.org/short', t.agentSpiffeId, [`unix:uid:${UID}`], {
          x509SvidTtl: TTL_S,
        }),
      ],
    });
  });

  after(async () => {
    await agent?.stop();
    await server?.stop();
  });

  it('rotates workload SVIDs at half-life, not as soon as they are issued', CHAINED, async () => {
    const client = workloadClient(agent.socketPath);
    const { stream, first } = await firstSvid(client);
    try {
      const a = leafOf(first);
      const b = leafOf(await nextSvid(stream, (l) => l.serialNumber !== a.serialNumber));
      assert.ok(Date.parse(b.validTo) > Date.parse(a.validTo), 'the new SVID lives longer');
      // Issued at half-life or later, less jitter (a tenth of the life) and the certificates'
      // whole seconds: a slow machine only makes this later.
      const apart = Date.parse(b.validFrom) - Date.parse(a.validFrom);
      assert.ok(apart >= 0.4 * TTL_S * 1000 - 1000, `rotated ${apart} ms after issuance`);
    } finally {
      stream.cancel();
      client.close();
    }
  });

  it('renews its own agent SVID at half-life', CHAINED, async () => {
    const admin = adminClients(server.adminSocket);
    const records = async (action: string) =>
      (await admin.audit.listAuditRecords({ action, limit: 10 })).records;
    let renewals: Awaited<ReturnType<typeof records>> = [];
    await waitFor(async () => (renewals = await records('agent.renew')).length > 0, DEADLINE_MS);
    const attested = await records('agent.attest');
    assert.equal(attested.length, 1, 'attested once, then renewed');
    const apart = Number(renewals[0]!.time) - Number(attested[0]!.time);
    // Half of the 20 s, less the certificate's whole second: a slow machine only makes it later.
    assert.ok(apart >= (TTL_S / 2) * 1000 - 1000, `renewed ${apart} ms after attesting`);
    assert.equal(agent.proc.exitCode, null, 'and kept running');
  });

  it('stops cleanly on SIGTERM', async () => {
    const t0 = performance.now();
    assert.equal(await agent.stop(), 0, agent.output());
    // Promptly: not after some timeout or backoff ran out (those are 30 s and more).
    assert.ok(performance.now() - t0 < 20_000, 'exited promptly');
  });
});

describe('agent rotation across a server outage', () => {
  // The agent SVID (1 h, the default) outlives any outage; workload SVIDs of 10 s fall due
  // while the server is away (and may expire: the agent keeps serving them).
  let server: ServerProcess;
  let agent: AgentProcess;

  before(async () => {
    server = await startServer();
    const admin = adminClients(server.adminSocket);
    const t = await admin.agents.createJoinToken({});
    agent = await startAgent(server, { joinToken: t.token });
    await admin.entries.batchCreateEntry({
      entries: [
        entry('spiffe://example.org/short', t.agentSpiffeId, [`unix:uid:${UID}`], {
          x509SvidTtl: 10,
        }),
      ],
    });
  });

  after(async () => {
    await agent?.stop();
    await server?.stop();
  });

  it(
    'keeps serving its SVIDs while the server is away, and rotates again once it is back',
    CHAINED,
    async () => {
      const client = workloadClient(agent.socketPath);
      const { stream, first } = await firstSvid(client);
      try {
        const from = agent.output().length;
        await server.stop();
        // The agent met the outage: a rotation fell due and could not be minted.
        await waitFor(
          () => agent.output().slice(from).includes('could not mint X.509-SVIDs'),
          DEADLINE_MS,
        );
        const restartedAt = Date.now();
        await server.restart();
        // Minting resumes after its backoff (at most 30 s) once the server answers again: an SVID
        // the restarted server issued (notBefore is backdated, in whole seconds) reaches the stream.
        const after = await nextSvid(
          stream,
          (l) => Date.parse(l.validFrom) + NOT_BEFORE_SKEW_MS + 1000 >= restartedAt,
          2 * DEADLINE_MS,
        );
        assert.notEqual(leafOf(after).serialNumber, leafOf(first).serialNumber);
        assert.equal(after.svids[0]!.spiffe_id, 'spiffe://example.org/short');
        assert.equal(agent.proc.exitCode, null, 'the agent kept running');
      } finally {
        stream.cancel();
        client.close();
      }
    },
  );
});

describe('agent re-attestation', () => {
  let server: ServerProcess;
  const agents: AgentProcess[] = [];

  before(async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-pop-'));
    pop = makeX509PopCerts(dir, 'node-7.example');
    server = await startServer({
      config: {
        agent_svid_ttl: '4s',
        node_attestors: { join_token: {}, x509pop: { ca_bundle_file: pop.caFile } },
      },
    });
  });

  after(async () => {
    for (const a of agents) await a.stop();
    await server?.stop();
  });

  let pop: ReturnType<typeof makeX509PopCerts>;

  it('re-attests with x509pop by itself after being evicted', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-popkeys-'));
    writeFileSync(path.join(dir, 'node.pem'), pop.certPem);
    writeFileSync(path.join(dir, 'node.key'), pop.keyPem);
    const agent = await startAgent(server, {
      args: [
        '--x509pop-cert',
        path.join(dir, 'node.pem'),
        '--x509pop-key',
        path.join(dir, 'node.key'),
      ],
    });
    agents.push(agent);
    const admin = adminClients(server.adminSocket);
    const list = await admin.agents.listAgents({ byAttestationType: 'x509pop' });
    const id = list.agents[0]!.spiffeId;
    const before = list.agents[0]!.createdAt;
    await admin.agents.evictAgent({ spiffeId: id });
    await waitFor(
      () =>
        admin.agents.getAgent({ spiffeId: id }).then(
          (r) => r.agent !== undefined && r.agent.createdAt >= before,
          () => false,
        ),
      DEADLINE_MS,
    );
    assert.equal(agent.proc.exitCode, null, 'and kept running');
  });

  it('exits with a clear error when its SVID expired and its join token is spent', async () => {
    const admin = adminClients(server.adminSocket);
    const t = await admin.agents.createJoinToken({});
    // Stopped once its data dir holds its 4 s agent SVID and the bundle that came with it
    // (however long it takes to get there), and left down until that SVID has expired.
    const agent = await startAgent(server, { joinToken: t.token, ready: false });
    agents.push(agent);
    const svidFile = path.join(agent.dataDir, 'agent-svid.pem');
    const bundleFile = path.join(agent.dataDir, 'bundle.pem');
    await waitFor(() => existsSync(svidFile) && existsSync(bundleFile), DEADLINE_MS);
    await agent.kill();
    const notAfter = Date.parse(new X509Certificate(readFileSync(svidFile)).validTo);
    await waitFor(() => Date.now() > notAfter, DEADLINE_MS, 200);
    const exited = agent.restart(['--join-token', t.token]).then(
      () => null,
      (e: unknown) => e as Error,
    );
    const err = await exited;
    assert.ok(err, 'the agent did not start');
    assert.equal(await agent.exited(), 5, agent.output());
    assert.match(
      agent.output(),
      /node attestation refused: join token does not exist, has expired or was already used/,
    );
  });
});
