// The broker as the composition root wires it, over real parts: the SQLite store (access model,
// leases, audit), the real secret store with a disk KEK, the catalog's static-secret provider.
// Only the decider is a stand-in (allow everything), as it is its own room.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import type { RequestContext } from '../../core/caller.ts';
import { ManualClock } from '../../core/clock.ts';
import { createKekManager } from '../../plugins/kek-managers/catalog.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import { Auditor } from '../audit/auditor.ts';
import { SecretStoreService } from '../broker/secret-store.ts';
import { clientEntry, ordersDb } from '../broker/testing/fixtures.ts';
import { EntryIndex } from '../registration/entry-index.ts';
import type { Minter } from '../svid/minter.ts';
import { type BrokerParts, buildBroker } from './broker.ts';

const NOW = Date.UTC(2030, 0, 1);
const SECRET = 'p4ss-only-in-the-credential';
const AGENT = 'spiffe://example.org/spire/agent/join_token/a1';
const CLIENT = 'spiffe://example.org/web';
const ENTRY_ID = '22222222-2222-4222-8222-222222222222';
const admin: RequestContext = { caller: { kind: 'local-admin' }, correlationId: 'setup' };

let dir = '';
let store: Store;
let parts: BrokerParts;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-compose-broker-'));
  const clock = new ManualClock(NOW);
  store = await openStore({ kind: 'sqlite', path: path.join(dir, 'db.sqlite3') }, clock);
  const auditor = new Auditor(clock, store);
  const kek = await createKekManager({ disk: {} }, { dataDir: dir });
  const secrets = await SecretStoreService.create({ store, kek, auditor, clock, serverId: 's1' });
  await secrets.put(
    admin,
    'orders-db',
    new TextEncoder().encode(JSON.stringify({ username: 'app', password: SECRET })),
  );
  await store.access.createServerWorkload(ordersDb(NOW));
  await store.access.createCredentialProvider({
    name: 'orders-password',
    type: 'static-secret',
    config: { secret: 'orders-db', format: 'username-password' },
    createdAt: NOW,
    updatedAt: NOW,
  });
  const index = new EntryIndex('spiffe://example.org/spire/server');
  index.upsert(clientEntry(ENTRY_ID, CLIENT, AGENT, NOW));
  parts = await buildBroker({
    config: { default_jwt_svid_ttl: 300_000, sts: undefined },
    store,
    auditor,
    clock,
    minter: {} as Minter,
    index,
    log: { warn: () => {}, info: () => {} },
    access: {
      secrets,
      decider: {
        decide: () => ({
          allowed: true,
          reason: 'allowed',
          policy: 'web-to-orders',
          credentialProvider: 'orders-password',
          failedCondition: '',
        }),
      },
    },
  });
});
after(async () => {
  await parts?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

it('releases the stored secret through the catalog provider; the chain never holds it', async () => {
  const out = await parts.broker.release(
    { spiffeId: AGENT, selectors: [] },
    {
      entryId: ENTRY_ID,
      selectors: ['unix:uid:1000'],
      attributes: {},
      server: 'orders-db',
      httpMethod: '',
      httpPath: '',
      httpHost: '',
      correlationId: 'compose-chain-1',
    },
  );
  assert.equal(out.kind, 'credential');
  if (out.kind !== 'credential') return;
  assert.deepEqual(out.credential.value, { kind: 'password', username: 'app', password: SECRET });
  assert.equal(out.present, 'postgres-password');
  const chain = await store.audit.list({ correlationId: 'compose-chain-1' }, 10);
  assert.deepEqual(
    chain.map((r) => r.action),
    ['access.request', 'access.authorization', 'access.credential'],
  );
  assert.ok(!JSON.stringify(await store.audit.list({}, 1000)).includes(SECRET));
  // Nor in any file of the data directory (database, WAL, KEK).
  for (const f of readdirSync(dir, { recursive: true }) as string[]) {
    const p = path.join(dir, f);
    if (statSync(p).isFile()) assert.ok(!readFileSync(p).includes(SECRET), `${f} holds the secret`);
  }
});

it('revoking a provider bumps the revision the sync streams push', async () => {
  const before = parts.revisionFeed.current;
  assert.equal(await parts.revocation.revoke({ provider: 'orders-password' }, 'deleted'), 0);
  await parts.revisionFeed.refresh();
  assert.equal(parts.revisionFeed.current, before + 1);
});
