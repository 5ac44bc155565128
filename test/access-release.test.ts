// Black-box: credential release and the access revision on the sync stream, with a real server
// (in process, so the test can write an `access` commit the way any access writer does) and a
// stand-in agent over mTLS; `tessera audit list --correlation-id` as a real CLI process.
// - The sync stream carries a new access_revision after an `access` commit: on one server
//   (SQLite), and from another server sharing PostgreSQL (LISTEN/NOTIFY). The entry poll
//   interval is an hour, so only the push path can deliver it; its latency is asserted to be
//   under a second on the fastest of three commits (one slow one on a busy machine is allowed),
//   and every one must arrive.
// - ReleaseCredential: agents only; an entry of another agent is PermissionDenied; for a server
//   workload that does not exist the answer is a Denial, audited as two linked records; end to
//   end with a real policy, provider and secret: the credential, the three-record chain, and a
//   deleted policy purging agents' caches and denying the next release.
// - Banning the agent revokes (the revision changes).
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { pino } from 'pino';
import { CredentialReleaseService } from '../proto/gen/tessera/v1/release_pb.js';
import { SecretService } from '../proto/gen/tessera/v1/secret_pb.js';
import {
  AccessPolicyService,
  CredentialProviderService,
  ServerWorkloadService,
} from '../proto/gen/tessera/v1/access_pb.js';
import { adminSocketTransport } from '../src/client/server-transport.ts';
import type { SyncAuthorizedEntriesResponse } from '../proto/gen/tessera/v1/sync_pb.js';
import { mtlsTransport } from '../src/client/server-transport.ts';
import { TesseraServer, loadServerConfig } from '../src/server/compose/server.ts';
import { adminClients, entry } from './helpers/admin.ts';
import { runCli } from './helpers/cli-process.ts';
import { createTempDatabase } from './helpers/postgres.ts';
import { StandInAgent, bundlePem, keyPem } from './helpers/stand-in-agent.ts';

const HOUR = 3_600_000;
const TD = 'example.org';

/** Servers sharing PostgreSQL share the secret store's KEK directory too (`kekDir`). */
async function startInProcess(datastoreUrl?: string, kekDir?: string) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'tessera-release-'));
  const configFile = path.join(dataDir, 'server.yaml');
  writeFileSync(
    configFile,
    kekDir ? `secrets:\n  key_manager:\n    disk:\n      dir: ${kekDir}\n` : '{}\n',
  );
  const config = loadServerConfig(
    {
      config: configFile,
      trustDomain: TD,
      dataDir,
      listen: '127.0.0.1:0',
      healthListen: '',
      ...(datastoreUrl ? { datastoreUrl } : {}),
    },
    {},
  );
  const server = await TesseraServer.create(config, {
    logger: pino({ level: 'silent' }),
    syncIntervalMs: HOUR,
  });
  const ac = new AbortController();
  let api = '';
  let listening!: () => void;
  const ready = new Promise<void>((r) => (listening = r));
  const done = server.run(ac.signal, (a) => {
    api = a.api;
    listening();
  });
  await ready;
  return {
    server,
    api,
    adminSocket: config.admin_socket,
    admin: adminClients(config.admin_socket),
    stop: async () => {
      ac.abort();
      await done;
    },
  };
}
type Started = Awaited<ReturnType<typeof startInProcess>>;

async function attestedAgent(s: Started): Promise<StandInAgent> {
  const t = await s.admin.agents.createJoinToken({});
  const agent = new StandInAgent({
    address: s.api,
    trustDomain: TD,
    trustBundlePem: await bundlePem(s.adminSocket),
  });
  await agent.attest('join_token', Buffer.from(t.token));
  return agent;
}

function releaseApi(agent: StandInAgent, s: Started) {
  const id = agent.identity;
  if (!id) throw new Error('not attested');
  return createClient(
    CredentialReleaseService,
    mtlsTransport({
      address: s.api,
      trustBundlePem: agent.trustBundlePem,
      serverId: agent.serverId,
      clientCertPem: id.certPem,
      clientKeyPem: keyPem(id.key),
    }),
  );
}

/** The sync stream's messages as they arrive, and a way to wait for one. */
function openSync(agent: StandInAgent) {
  const ac = new AbortController();
  const got: Array<{ at: number; msg: SyncAuthorizedEntriesResponse }> = [];
  let error: unknown = null;
  const done = (async () => {
    try {
      for await (const msg of agent.syncApi().syncAuthorizedEntries({}, { signal: ac.signal }))
        got.push({ at: performance.now(), msg });
    } catch (e) {
      if (!ac.signal.aborted) error = e;
    }
  })();
  return {
    got,
    error: () => error,
    async until(what: string, pick: (m: SyncAuthorizedEntriesResponse) => boolean, ms = 30_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const hit = got.find((g) => pick(g.msg));
        if (hit) return hit;
        if (error) throw error;
        if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async close() {
      ac.abort();
      await done;
    },
  };
}

/** Bumps through `writer` three times; returns each latency until `reader`'s stream carried it. */
async function latencies(writer: Started, sync: ReturnType<typeof openSync>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    const rev = await writer.server.store.accessRevision.bump();
    const hit = await sync.until(`access_revision ${rev}`, (m) => m.accessRevision === BigInt(rev));
    out.push(hit.at - started);
  }
  return out;
}

describe('access revision on the sync stream', () => {
  it('one server (SQLite): an access commit reaches the stream within a second', async () => {
    const s = await startInProcess();
    try {
      const agent = await attestedAgent(s);
      const sync = openSync(agent);
      const first = await sync.until('the initial message', (m) => m.initial);
      assert.ok(first.msg.accessRevision > 0n, 'the first message carries the revision');
      assert.equal(first.msg.accessRevision, BigInt(await s.server.store.accessRevision.current()));
      const ms = await latencies(s, sync);
      assert.ok(Math.min(...ms) < 1000, `latencies ${ms.map((x) => x.toFixed(0)).join(', ')} ms`);
      // A secret written through the admin API is an `access` commit like any other.
      const secrets = createClient(SecretService, adminSocketTransport(s.adminSocket));
      const beforePut = await s.server.store.accessRevision.current();
      await secrets.putSecret({ name: 'orders-db', value: new TextEncoder().encode('pw') });
      await sync.until('the revision after a secret put', (m) => m.accessRevision > beforePut);
      // Messages without a change carry no revision (0 = unset): only the ones that changed it.
      const revs = sync.got.map((g) => g.msg.accessRevision).filter((r) => r !== 0n);
      assert.equal(new Set(revs).size, revs.length);
      await sync.close();
    } finally {
      await s.stop();
    }
  });

  it('two servers on PostgreSQL: an access commit through B reaches A’s stream', async () => {
    const db = await createTempDatabase('tessera_release');
    try {
      const kekDir = mkdtempSync(path.join(os.tmpdir(), 'tessera-release-kek-'));
      const a = await startInProcess(db.url, kekDir);
      const b = await startInProcess(db.url, kekDir).catch(async (e: unknown) => {
        await a.stop();
        throw e;
      });
      try {
        const agent = await attestedAgent(a);
        const sync = openSync(agent);
        const first = await sync.until('the initial message', (m) => m.initial);
        assert.equal(
          first.msg.accessRevision,
          BigInt(await b.server.store.accessRevision.current()),
          'both servers report the one revision of the database',
        );
        const ms = await latencies(b, sync);
        assert.ok(Math.min(...ms) < 1000, `latencies ${ms.map((x) => x.toFixed(0)).join(', ')} ms`);
        await sync.close();
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
    } finally {
      await db.drop();
    }
  });
});

describe('ReleaseCredential', () => {
  it('denies an unknown server workload (two linked records), refuses foreign entries, revokes on ban', async () => {
    const s = await startInProcess();
    try {
      const agent = await attestedAgent(s);
      const other = await attestedAgent(s);
      const agentId = agent.identity?.spiffeId ?? '';
      const created = await s.admin.entries.batchCreateEntry({
        entries: [
          entry('spiffe://example.org/web', agentId, ['unix:uid:1000']),
          entry('spiffe://example.org/batch', other.identity?.spiffeId ?? '', ['unix:uid:2000']),
        ],
      });
      const ids = created.results.map((r) => r.entry?.id ?? '');
      const mine = ids[0] ?? '';
      const theirs = ids[1] ?? '';
      const api = releaseApi(agent, s);
      const correlationId = 'test-chain-0001';
      const res = await api.releaseCredential({
        entryId: mine,
        selectors: ['unix:uid:1000'],
        server: 'orders-db',
        correlationId,
      });
      assert.equal(res.result.case, 'denial');
      assert.equal(res.result.value?.reason, 'unknown-server-workload');
      assert.equal(res.result.value?.correlationId, correlationId);

      // Another agent's entry: refused, audited.
      try {
        await api.releaseCredential({
          entryId: theirs,
          selectors: ['unix:uid:2000'],
          server: 'orders-db',
        });
        assert.fail('expected PermissionDenied');
      } catch (e) {
        const ce = ConnectError.from(e);
        assert.equal(Code[ce.code], 'PermissionDenied');
        assert.equal(ce.rawMessage, `agent is not authorized for entry "${theirs}"`);
      }
      // Bad input: a clear InvalidArgument.
      await assert.rejects(
        api.releaseCredential({ entryId: mine, selectors: [], server: 'Bad Name' }),
        (e: unknown) => ConnectError.from(e).code === Code.InvalidArgument,
      );

      // The chain, as an operator reads it.
      const env = { TESSERA_ADMIN_SOCKET: s.adminSocket };
      const json = await runCli(
        ['audit', 'list', '--correlation-id', correlationId, '--output', 'json'],
        { env },
      );
      assert.equal(json.code, 0, json.stderr);
      const records = (
        JSON.parse(json.stdout) as {
          records: Array<{ action: string; actor: string; target: string; outcome: string }>;
        }
      ).records;
      assert.deepEqual(
        records.map((r) => [r.action, r.actor, r.target, r.outcome]),
        [
          ['access.request', 'spiffe://example.org/web', 'orders-db', 'success'],
          ['access.authorization', 'spiffe://example.org/web', 'orders-db', 'denied'],
        ],
      );
      const table = await runCli(['audit', 'list', '--correlation-id', correlationId], { env });
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /DETAILS/);
      assert.match(table.stdout, /"reason":"unknown-server-workload"/);
      const bad = await runCli(['audit', 'list', '--correlation-id', correlationId, '--tail'], {
        env,
      });
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /--tail cannot be combined with --correlation-id/);

      // A ban revokes: the revision every agent compares changes.
      const before = await s.server.store.accessRevision.current();
      await s.admin.agents.banAgent({ spiffeId: agentId });
      assert.ok((await s.server.store.accessRevision.current()) > before);
    } finally {
      await s.stop();
    }
  });
});

describe('ReleaseCredential, allowed end to end', () => {
  it('policy → credential with a three-record chain; policy deleted → stream purge, then denied', async () => {
    const SECRET = 'e2e-pw-never-in-a-record';
    const s = await startInProcess();
    try {
      const agent = await attestedAgent(s);
      const agentId = agent.identity?.spiffeId ?? '';
      const created = await s.admin.entries.batchCreateEntry({
        entries: [entry('spiffe://example.org/web', agentId, ['unix:uid:1000'])],
      });
      const entryId = created.results[0]?.entry?.id ?? '';
      const t = adminSocketTransport(s.adminSocket);
      await createClient(SecretService, t).putSecret({
        name: 'orders-db',
        value: new TextEncoder().encode(JSON.stringify({ username: 'app', password: SECRET })),
      });
      await createClient(ServerWorkloadService, t).createServerWorkload({
        serverWorkload: {
          name: 'orders-db',
          host: 'db.internal',
          port: 5432,
          protocol: 'postgres',
          present: 'postgres-password',
        },
      });
      await createClient(CredentialProviderService, t).createCredentialProvider({
        credentialProvider: {
          name: 'orders-password',
          type: 'static-secret',
          config: { secret: 'orders-db', format: 'username-password' },
        },
      });
      const policies = createClient(AccessPolicyService, t);
      await policies.createAccessPolicy({
        accessPolicy: {
          name: 'web-to-orders',
          client: 'spiffe://example.org/web',
          server: 'orders-db',
          credentialProvider: 'orders-password',
        },
      });
      const sync = openSync(agent);
      await sync.until('the initial message', (m) => m.initial);
      const api = releaseApi(agent, s);
      const ask = (correlationId: string) =>
        api.releaseCredential({
          entryId,
          selectors: ['unix:uid:1000', 'unix:gid:1000'],
          server: 'orders-db',
          correlationId,
        });
      const res = await ask('e2e-chain-0001');
      assert.equal(res.result.case, 'credential');
      if (res.result.case !== 'credential') return;
      const c = res.result.value;
      assert.deepEqual(c.value, {
        case: 'password',
        value: { $typeName: 'tessera.v1.UsernamePassword', username: 'app', password: SECRET },
      });
      assert.equal(c.expiresAt, 0n);
      assert.equal(c.present, 'postgres-password');
      assert.equal(c.policy, 'web-to-orders');
      assert.equal(c.credentialProvider, 'orders-password');

      const env = { TESSERA_ADMIN_SOCKET: s.adminSocket };
      const json = await runCli(
        ['audit', 'list', '--correlation-id', 'e2e-chain-0001', '--output', 'json'],
        { env },
      );
      assert.equal(json.code, 0, json.stderr);
      const chain = (JSON.parse(json.stdout) as { records: Array<{ action: string }> }).records;
      assert.deepEqual(
        chain.map((r) => r.action),
        ['access.request', 'access.authorization', 'access.credential'],
      );
      const all = await s.admin.audit.listAuditRecords({ limit: 1000 });
      const text = JSON.stringify(all.records, (_k, v: unknown) =>
        typeof v === 'bigint' ? v.toString() : v,
      );
      assert.ok(!text.includes(SECRET), 'no audit record holds the value');

      // Deleting the policy: the stream tells agents to drop what they cached, and the very next
      // release is decided on the new policy set.
      const before = await s.server.store.accessRevision.current();
      await policies.deleteAccessPolicy({ name: 'web-to-orders' });
      await sync.until('the revision after the delete', (m) => m.accessRevision > BigInt(before));
      const after = await ask('e2e-chain-0002');
      assert.equal(after.result.case, 'denial');
      assert.equal(after.result.value?.reason, 'no-matching-policy');
      await sync.close();
    } finally {
      await s.stop();
    }
  });
});
