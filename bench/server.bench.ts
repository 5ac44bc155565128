// Server benchmarks (issue: foundation). Each rate is printed with its ratio to a baseline
// measured in the same run:
// - JWT-SVID mint for an agent (authorization + sign + audit) / raw crypto.sign P-256 (≥ 0.5)
// - X.509-SVID mint from a CSR for an agent (batches of 50) / raw crypto.sign P-256 (≥ 0.25)
// - authorized-entries lookup for one agent with 1,000 vs 100,000 entries in the store (≤ 2)
// - server ready with 100,000 entries (< 10 s)
// Run: ./node_modules/.bin/node bench/server.bench.ts [ms-per-measurement]
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Entry } from '../src/core/entry.ts';
import { entryOf } from '../src/core/testing/entry.ts';
import { TrustDomain } from '../src/core/spiffe-id.ts';
import type { AttestedNode } from '../src/core/node.ts';
import { createCsr } from '../src/crypto/x509/csr-create.ts';
import { MemoryKeyManager } from '../src/crypto/keys/memory-key-manager.ts';
import { Auditor } from '../src/server/audit/auditor.ts';
import { createAuthorityFactory } from '../src/server/authority/authority-factory.ts';
import { AuthorityManager } from '../src/server/authority/authority-manager.ts';
import { loadServerConfig, systemClock, TesseraServer } from '../src/server/compose/server.ts';
import type { RequestContext } from '../src/core/caller.ts';
import { EntryIndex } from '../src/server/registration/entry-index.ts';
import { Minter } from '../src/server/svid/minter.ts';
import { SvidService } from '../src/server/svid/svid-service.ts';
import { openStore } from '../src/store/open.ts';
import { compare, measure, measureAsync, ratio } from './lib.ts';

const ms = Number(process.argv[2] ?? 2000);
const TD = TrustDomain.parse('example.org');
const SERVER_ID = 'spiffe://example.org/spire/server';
const AGENT_ID = 'spiffe://example.org/spire/agent/join_token/bench';
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'tessera-bench-'));

function entries(n: number, agentShare: number): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < n; i++) {
    const mine = i < agentShare;
    out.push(
      entryOf({
        id: randomUUID(),
        spiffeId: `spiffe://example.org/svc/${i}`,
        parentId: mine ? AGENT_ID : `spiffe://example.org/spire/agent/join_token/other-${i % 997}`,
        selectors: [{ type: 'unix', value: `uid:${i}` }],
      }),
    );
  }
  return out;
}

async function signingBenches(): Promise<void> {
  const store = await openStore({ kind: 'sqlite', path: path.join(tmp(), 'db.sqlite3') });
  const keys = new MemoryKeyManager();
  const auditor = new Auditor(systemClock, store);
  const authorities = await AuthorityManager.create({
    store,
    keys,
    auditor,
    clock: systemClock,
    serverId: 'bench',
    trustDomain: TD.name,
    refreshHintSeconds: 300,
    factory: createAuthorityFactory({
      keys,
      trustDomain: TD.name,
      x509: { keyType: 'ec-p256', ttlMs: 86_400_000, upstream: null },
      jwt: { keyType: 'ec-p256', ttlMs: 86_400_000 },
    }),
  });
  const index = new EntryIndex(SERVER_ID);
  const mine = entries(100, 100);
  for (const e of mine) index.upsert(e);
  const svids = new SvidService({
    auditor,
    clock: systemClock,
    minter: new Minter({ authorities, clock: systemClock, issuer: '' }),
    index,
    trustDomain: TD,
    defaultX509TtlMs: 3_600_000,
    defaultJwtTtlMs: 300_000,
  });
  const node: AttestedNode = {
    spiffeId: AGENT_ID,
    attestationType: 'join_token',
    serialNumber: '1',
    newSerialNumber: '',
    expiresAt: Date.now() + 3_600_000,
    selectors: [],
    banned: false,
    canReattest: false,
    createdAt: 0,
    updatedAt: 0,
  };
  const ctx: RequestContext = {
    caller: { kind: 'agent', spiffeId: AGENT_ID, node, serial: '1' },
    correlationId: 'bench',
  };
  const csrs = Array.from({ length: 200 }, () =>
    createCsr(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey),
  );
  const baseKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const data = Buffer.alloc(256, 7);
  let i = 0;
  const rounds = await compare(
    () => measure('raw crypto.sign (P-256, sync)', () => sign('sha256', data, baseKey), ms),
    [
      () =>
        measureAsync(
          'JWT-SVID mint for an agent (64 in flight)',
          async () => {
            const e = mine[i++ % mine.length]!;
            checkJwt(await svids.newJwt(ctx, node, e.id, ['bench']), e);
          },
          ms,
          64,
        ),
      async () => {
        const batch = 50;
        const rate = await measureAsync(
          'X.509-SVID batches of 50 from CSRs (4 in flight)',
          async () => {
            const params = Array.from({ length: batch }, (_, k) => ({
              entryId: mine[k]!.id,
              csr: csrs[(i++ + k) % csrs.length]!,
            }));
            checkBatch(await svids.batchNewX509(ctx, node, params), params, mine);
          },
          ms,
          4,
        );
        console.log(
          `${'  = X.509-SVIDs per second'.padEnd(48)} ${Math.round(rate * batch)
            .toLocaleString('en-US')
            .padStart(12)}`,
        );
        return rate * batch;
      },
    ],
  );
  ratio('JWT-SVID mint for an agent / raw sign', rounds[0]!, rounds.baseline, 0.5);
  ratio('X.509-SVID mint from CSR / raw sign', rounds[1]!, rounds.baseline, 0.25);
  await store.close();
}

/**
 * The lookup with 1,000 and with 100,000 entries in the index, in alternating rounds (best of
 * each kept, bench/lib.ts compare()), each call checked to return exactly the agent's entries.
 */
async function lookupBench(): Promise<void> {
  const AGENT_SHARE = 20;
  const lookup = (n: number) => {
    const index = new EntryIndex(SERVER_ID);
    for (const e of entries(n, AGENT_SHARE)) index.upsert(e);
    const none = new Set<string>();
    return () =>
      measure(
        `authorized-entries lookup, ${n.toLocaleString('en-US')} entries`,
        () => {
          const found = index.authorizedFor(AGENT_ID, none, 0);
          if (found.length !== AGENT_SHARE) {
            throw new Error(`lookup found ${found.length} entries, expected ${AGENT_SHARE}`);
          }
        },
        ms / 2,
      );
  };
  const rounds = await compare(lookup(1_000), [lookup(100_000)], 3);
  const r = rounds.baseline / rounds[0]!;
  console.log(
    `${'ratio lookup time 100k / 1k entries'.padEnd(48)} ${r.toFixed(3)} (target ≤ 2.00: ${r <= 2 ? 'ok' : 'ABOVE'}; best of 3 alternating rounds)`,
  );
}

/** A JWT-SVID for the entry asked for: a refused or wrong mint must not count as a fast one. */
function checkJwt(svid: { spiffeId: string; token: string }, e: Entry): void {
  if (svid.spiffeId !== e.spiffeId || svid.token.split('.').length !== 3) {
    throw new Error(`JWT-SVID mint returned ${svid.spiffeId} for ${e.spiffeId}`);
  }
}

/** Every item of the batch minted, in order, for its entry, with a certificate chain. */
function checkBatch(
  results: Awaited<ReturnType<SvidService['batchNewX509']>>,
  params: ReadonlyArray<{ entryId: string }>,
  all: readonly Entry[],
): void {
  if (results.length !== params.length) {
    throw new Error(`X.509 batch: ${results.length} results for ${params.length} items`);
  }
  for (const [k, r] of results.entries()) {
    if (!r.ok) throw new Error(`X.509 batch item ${k} refused: ${r.code}: ${r.message}`);
    const want = all[k]!; // item k asks for entry k (see the batch above)
    if (params[k]!.entryId !== want.id) throw new Error('X.509 batch: items out of order');
    if (
      r.value.entryId !== want.id ||
      r.value.spiffeId !== want.spiffeId ||
      r.value.chainDer.length === 0
    ) {
      throw new Error(`X.509 batch item ${k}: minted ${r.value.spiffeId} for ${want.spiffeId}`);
    }
  }
}

async function readyBench(): Promise<void> {
  const dir = tmp();
  const config = loadServerConfig(
    { trustDomain: TD.name, dataDir: dir, listen: '127.0.0.1:0', healthListen: '' },
    {},
  );
  const store = await openStore(config.datastore);
  const all = entries(100_000, 100);
  for (let k = 0; k < all.length; k += 5_000)
    await store.entries.createMany(all.slice(k, k + 5_000));
  await store.close();
  const started = performance.now();
  const server = await TesseraServer.create(config, {
    logger: (await import('pino')).pino({ level: 'silent' }),
  });
  const ac = new AbortController();
  let readyAt = 0;
  const done = server.run(ac.signal, () => (readyAt = performance.now()));
  while (readyAt === 0) await new Promise((r) => setTimeout(r, 5));
  if (server.index.size !== all.length) {
    throw new Error(
      `server ready with ${server.index.size} entries indexed, expected ${all.length}`,
    );
  }
  const seconds = (readyAt - started) / 1000;
  console.log(
    `${'server ready with entries'.padEnd(48)} ${server.index.size.toLocaleString('en-US').padStart(12)} entries in ${seconds.toFixed(2)} s (target < 10 s: ${seconds < 10 ? 'ok' : 'ABOVE'})`,
  );
  ac.abort();
  await done;
}

await signingBenches();
await lookupBench();
await readyBench();
