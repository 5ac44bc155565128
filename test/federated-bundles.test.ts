// Black-box: federated bundles from the server's datastore to workloads. A real server and a
// real agent process; the federated bundles are written straight into the server's SQLite store
// (as another server sharing the database, or the bundle fetcher, would); a plain grpc-js client
// generated from the .proto, the SDK and the CLI check what workloads receive.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type grpc from '@grpc/grpc-js';
import type { Bundle } from '../src/core/bundle.ts';
import { ManualClock } from '../src/core/clock.ts';
import type { ManagedKey } from '../src/crypto/key-manager.ts';
import { signJwtSvid } from '../src/crypto/jwt/sign.ts';
import { MemoryKeyManager } from '../src/crypto/keys/memory-key-manager.ts';
import { derToPem } from '../src/crypto/x509/pem.ts';
import { makeCa } from '../src/crypto/x509/testing/ca.ts';
import { openStore } from '../src/store/open.ts';
import type { Store } from '../src/store/types.ts';
import { JwtSource, X509Source } from '../src/client/workload/index.ts';
import { adminClients, entry, type AdminClients } from './helpers/admin.ts';
import { startAgent, type AgentProcess } from './helpers/agent-process.ts';
import { createTempDatabase, type TempDatabase } from './helpers/postgres.ts';
import { REPO, startServer, type ServerProcess } from './helpers/server-process.ts';
import { StandInAgent, bundlePem } from './helpers/stand-in-agent.ts';
import { header, unary, workloadClient, type WorkloadClient } from './helpers/workload-grpc.ts';

const UID = process.getuid?.() ?? 0;
const PARTNER = 'partner.test';
const PARTNER_ID = `spiffe://${PARTNER}`;
/** Bound on "the change reaches the workload": store poll (200 ms) + sync + stream. */
const PROPAGATION_MS = 10_000;

const keys = new MemoryKeyManager();

interface Authority {
  ca: { certDer: Uint8Array };
  jwt: ManagedKey;
  kid: string;
}

async function authority(td: string, kid: string): Promise<Authority> {
  return { ca: await makeCa('ec-p256', td), jwt: await keys.generate(kid, 'ec-p256'), kid };
}

function bundleOf(td: string, a: Authority, sequence: number): Bundle {
  return {
    trustDomain: td,
    x509Authorities: [{ der: a.ca.certDer, tainted: false }],
    jwtAuthorities: [
      { kid: a.kid, publicKeyDer: a.jwt.publicKeyDer, expiresAt: 0, tainted: false },
    ],
    sequence,
    refreshHint: 300,
  };
}

/** A server-streaming Workload API call read message by message. */
function stream<T>(client: WorkloadClient, method: string) {
  const call = (client[method] as (r: object, m: grpc.Metadata) => grpc.ClientReadableStream<T>)(
    {},
    header(),
  );
  const queue: T[] = [];
  let waiter: (() => void) | null = null;
  let failure: Error | null = null;
  call.on('data', (m: T) => {
    queue.push(m);
    waiter?.();
  });
  call.on('error', (e: Error) => {
    failure = e;
    waiter?.();
  });
  return {
    /** The first message (now or later) that satisfies `pred`, within `ms`. */
    async until(pred: (m: T) => boolean, ms = PROPAGATION_MS): Promise<T> {
      const deadline = Date.now() + ms;
      for (;;) {
        while (queue.length > 0) {
          const m = queue.shift() as T;
          if (pred(m)) return m;
        }
        if (failure) throw failure;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`${method}: no matching message within ${ms} ms`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          waiter = () => {
            clearTimeout(t);
            waiter = null;
            resolve();
          };
        });
      }
    },
    cancel: () => call.cancel(),
  };
}

interface X509Msg {
  svids: { spiffe_id: string }[];
  federated_bundles: Record<string, Buffer>;
}
interface JwtBundlesMsg {
  bundles: Record<string, Buffer>;
}

const kids = (m: JwtBundlesMsg, td: string): string[] | undefined => {
  const b = m.bundles[td];
  return b
    ? (JSON.parse(b.toString('utf8')) as { keys: { kid: string }[] }).keys.map((k) => k.kid)
    : undefined;
};

async function partnerToken(a: Authority, audience: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return signJwtSvid({
    key: a.jwt,
    kid: a.kid,
    claims: {
      sub: `${PARTNER_ID}/api`,
      aud: [audience],
      exp: now + 300,
      iat: now,
      iss: 'https://partner',
    },
  });
}

const execFileAsync = promisify(execFile);

async function svidFetchWrite(
  socket: string,
  dir: string,
): Promise<{ federated: Record<string, string> }> {
  const { stdout } = await execFileAsync(
    path.join(REPO, 'bin/tessera'),
    ['svid', 'fetch', '--write', dir, '--socket', socket, '--output', 'json'],
    { env: { ...process.env, TESSERA_LOG_LEVEL: 'silent' } },
  );
  return (JSON.parse(stdout) as { files: { federated: Record<string, string> } }).files;
}

describe('federated bundles: server store → agent → workloads', () => {
  let server: ServerProcess;
  let admin: AdminClients;
  let agent: AgentProcess;
  let store: Store;
  let v1: Authority;
  let v2: Authority;
  let stranger: Authority;

  before(async () => {
    [v1, v2, stranger] = await Promise.all([
      authority(PARTNER, 'partner-1'),
      authority(PARTNER, 'partner-2'),
      authority('stranger.test', 'stranger-1'),
    ]);
    server = await startServer({ config: { federated_bundle_refresh_interval: '200ms' } });
    admin = adminClients(server.adminSocket);
    // The datastore the server uses, opened as a second server sharing it would.
    store = await openStore(
      { kind: 'sqlite', path: path.join(server.dataDir, 'datastore.sqlite3') },
      new ManualClock(Date.now()),
    );
    await store.bundles.put(bundleOf(PARTNER, v1, 1));
    // Held by the server, but no entry federates with it: never sent to agents or workloads.
    await store.bundles.put(bundleOf('stranger.test', stranger, 1));
    const t = await admin.agents.createJoinToken({});
    agent = await startAgent(server, { joinToken: t.token });
    await admin.entries.batchCreateEntry({
      entries: [
        entry('spiffe://example.org/fed', t.agentSpiffeId, [`unix:uid:${UID}`], {
          federatesWith: [PARTNER],
        }),
      ],
    });
  });

  after(async () => {
    await store?.close();
    await agent?.stop();
    await server?.stop();
  });

  it('delivers, updates and removes a federated bundle on FetchX509SVID and FetchJWTBundles', async () => {
    const client = workloadClient(agent.socketPath, true);
    // The entry reaches the agent asynchronously: reopen until an identity arrives.
    let x509 = stream<X509Msg>(client, 'FetchX509SVID');
    let first: X509Msg | null = null;
    for (let i = 0; i < 50 && !first; i++) {
      try {
        first = await x509.until((m) => PARTNER_ID in m.federated_bundles, 2000);
      } catch {
        x509.cancel();
        await new Promise((r) => setTimeout(r, 100));
        x509 = stream<X509Msg>(client, 'FetchX509SVID');
      }
    }
    assert.ok(first, 'an SVID with the federated bundle arrived');
    assert.equal(first.svids[0]?.spiffe_id, 'spiffe://example.org/fed');
    assert.deepEqual(
      Object.keys(first.federated_bundles),
      [PARTNER_ID],
      'only what it federates with',
    );
    assert.deepEqual(first.federated_bundles[PARTNER_ID], Buffer.from(v1.ca.certDer));

    const jwt = stream<JwtBundlesMsg>(client, 'FetchJWTBundles');
    const jwt1 = await jwt.until((m) => kids(m, PARTNER_ID) !== undefined);
    assert.deepEqual(kids(jwt1, PARTNER_ID), ['partner-1']);
    assert.deepEqual(Object.keys(jwt1.bundles).sort(), ['spiffe://example.org', PARTNER_ID]);

    // ValidateJWTSVID accepts the federated trust domain's token; foreign claims filtered.
    const ok = await unary<{ spiffe_id: string; claims: { fields: Record<string, unknown> } }>(
      client,
      'ValidateJWTSVID',
      {
        audience: 'spiffe://example.org/fed',
        svid: await partnerToken(v1, 'spiffe://example.org/fed'),
      },
    );
    assert.equal(ok.spiffe_id, `${PARTNER_ID}/api`);
    assert.deepEqual(Object.keys(ok.claims.fields).sort(), ['aud', 'exp', 'sub']);

    // The SDK sees it too.
    const address = `unix://${agent.socketPath}`;
    const source = await X509Source.open({ address, timeoutMs: 10_000 });
    const jwts = await JwtSource.open({ address, timeoutMs: 10_000 });
    try {
      assert.deepEqual(
        source.getX509BundleForTrustDomain(PARTNER)?.map((d) => Buffer.from(d)),
        [Buffer.from(v1.ca.certDer)],
      );
      assert.deepEqual(
        [...(jwts.getJwtBundleForTrustDomain(PARTNER)?.keys() ?? [])],
        ['partner-1'],
      );
    } finally {
      await source.close();
      await jwts.close();
    }

    // And the CLI writes it next to the SVID.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-fed-write-'));
    const files = await svidFetchWrite(agent.socketPath, dir);
    assert.deepEqual(files.federated, { [PARTNER]: path.join(dir, `federated-${PARTNER}.pem`) });
    assert.equal(
      readFileSync(path.join(dir, `federated-${PARTNER}.pem`), 'utf8'),
      derToPem(v1.ca.certDer),
    );

    // An update: new CA and JWT key under a new sequence.
    let t0 = performance.now();
    await store.bundles.put(bundleOf(PARTNER, v2, 2));
    const updated = await x509.until(
      (m) => m.federated_bundles[PARTNER_ID]?.equals(Buffer.from(v2.ca.certDer)) === true,
    );
    assert.equal(updated.svids[0]?.spiffe_id, 'spiffe://example.org/fed');
    const jwt2 = await jwt.until((m) => kids(m, PARTNER_ID)?.[0] === 'partner-2');
    assert.deepEqual(kids(jwt2, PARTNER_ID), ['partner-2']);
    const updateMs = performance.now() - t0;
    await assert.rejects(
      unary(client, 'ValidateJWTSVID', {
        audience: 'x',
        svid: await partnerToken(v1, 'x'),
      }),
      /unknown kid "partner-1"/,
      'the replaced key no longer validates',
    );

    // A removal: the workloads drop it.
    t0 = performance.now();
    assert.equal(await store.bundles.delete(PARTNER), true);
    const removed = await x509.until((m) => !(PARTNER_ID in m.federated_bundles));
    assert.deepEqual(removed.federated_bundles, {});
    assert.equal(removed.svids[0]?.spiffe_id, 'spiffe://example.org/fed');
    const jwt3 = await jwt.until((m) => kids(m, PARTNER_ID) === undefined);
    assert.deepEqual(Object.keys(jwt3.bundles), ['spiffe://example.org']);
    const removeMs = performance.now() - t0;
    assert.ok(updateMs < PROPAGATION_MS && removeMs < PROPAGATION_MS);

    // A later `svid fetch --write` into the same directory deletes the stale file.
    const again = await svidFetchWrite(agent.socketPath, dir);
    assert.deepEqual(again.federated, {});
    assert.equal(existsSync(path.join(dir, `federated-${PARTNER}.pem`)), false);

    x509.cancel();
    jwt.cancel();
    client.close();
  });

  it('persists them in the agent data dir: a restarted agent validates with them while the server is down', async () => {
    await store.bundles.put(bundleOf(PARTNER, v2, 3));
    // The agent's synced state (entries and bundles) is written to its data dir shortly after
    // a change; the entry is what lets a caller use the federated bundle after a restart.
    const file = path.join(agent.dataDir, 'sync-state.json');
    interface StateDoc {
      entries: { spiffeId: string; federatesWith?: string[] }[];
      federated_bundles: { trustDomain: string; sequence: string }[];
    }
    const read = () => JSON.parse(readFileSync(file, 'utf8')) as StateDoc;
    const persisted = () =>
      existsSync(file) &&
      read().federated_bundles.some((b) => b.trustDomain === PARTNER && b.sequence === '3');
    const deadline = Date.now() + PROPAGATION_MS;
    while (!persisted() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(persisted(), 'the federated bundle was persisted');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const doc = read();
    assert.deepEqual(
      doc.federated_bundles.map((b) => b.trustDomain),
      [PARTNER],
    );
    assert.deepEqual(
      doc.entries.map((e) => [e.spiffeId, e.federatesWith]),
      [['spiffe://example.org/fed', [PARTNER]]],
    );
    assert.equal(existsSync(path.join(agent.dataDir, 'federated-bundles.json')), false);

    await server.stop();
    await agent.stop();
    await agent.restart();
    const client = workloadClient(agent.socketPath, true);
    try {
      const ok = await unary<{ spiffe_id: string }>(client, 'ValidateJWTSVID', {
        audience: 'aud',
        svid: await partnerToken(v2, 'aud'),
      });
      assert.equal(ok.spiffe_id, `${PARTNER_ID}/api`);
      await assert.rejects(
        unary(client, 'ValidateJWTSVID', {
          audience: 'aud',
          svid: await partnerToken(stranger, 'aud'),
        }),
        /INVALID_ARGUMENT|invalid JWT-SVID/,
      );
      // The bundles come from the restored state too; an X.509-SVID cannot be minted without
      // the server, so FetchX509SVID says "no identity" (the client retries later).
      const jwt = stream<JwtBundlesMsg>(client, 'FetchJWTBundles');
      assert.deepEqual(kids(await jwt.until(() => true), PARTNER_ID), ['partner-2']);
      jwt.cancel();
      const x509 = stream<X509Msg>(client, 'FetchX509SVID');
      await assert.rejects(
        x509.until(() => true),
        /PERMISSION_DENIED|no identity issued/,
      );
    } finally {
      client.close();
    }
  });
});

describe('federated bundles with PostgreSQL: stored by another server, served by this one', () => {
  let db: TempDatabase;
  let server: ServerProcess;
  let store: Store;

  before(async () => {
    db = await createTempDatabase();
    server = await startServer({
      datastoreUrl: db.url,
      config: { federated_bundle_refresh_interval: '200ms' },
    });
    store = await openStore({ kind: 'postgres', url: db.url, poolSize: 2 });
  });

  after(async () => {
    await store?.close();
    await server?.stop();
    await db?.drop();
  });

  it('reaches the sync API of an agent whose entry federates with it, and its deletion too', async () => {
    const partner = await authority(PARTNER, 'pg-partner-1');
    const admin = adminClients(server.adminSocket);
    const t = await admin.agents.createJoinToken({});
    const agent = new StandInAgent({
      address: server.apiAddr,
      trustDomain: 'example.org',
      trustBundlePem: await bundlePem(server.adminSocket),
    });
    await agent.attest('join_token', Buffer.from(t.token));
    await admin.entries.batchCreateEntry({
      entries: [
        entry('spiffe://example.org/pg', agent.identity!.spiffeId, ['unix:uid:7'], {
          federatesWith: [PARTNER],
        }),
      ],
    });
    const federated = async () =>
      (await agent.syncApi().getAuthorizedEntries({})).federatedBundles.map(
        (b) => `${b.trustDomain}@${b.sequence}`,
      );
    const eventually = async (want: string[]) => {
      const deadline = Date.now() + PROPAGATION_MS;
      let got = await federated();
      while (JSON.stringify(got) !== JSON.stringify(want) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        got = await federated();
      }
      assert.deepEqual(got, want);
    };
    await store.bundles.put(bundleOf(PARTNER, partner, 5));
    await eventually([`${PARTNER}@5`]);
    await store.bundles.delete(PARTNER);
    await eventually([]);
  });
});
