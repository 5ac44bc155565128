// Audit fails closed: when the audit record cannot be written, the change is not made and the
// SVID is not handed out.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../core/clock.ts';
import { TrustDomain } from '../../core/spiffe-id.ts';
import { MemoryKeyManager } from '../../crypto/keys/memory-key-manager.ts';
import { openStore } from '../../store/open.ts';
import type { AuditStore, Store, StoreAggregates } from '../../store/types.ts';
import { createAuthorityFactory } from '../authority/authority-factory.ts';
import { AuthorityManager } from '../authority/authority-manager.ts';
import type { RequestContext } from '../../core/caller.ts';
import { EntryIndex } from '../registration/entry-index.ts';
import { EntryService } from '../registration/entry-service.ts';
import { Minter } from '../svid/minter.ts';
import { SvidService } from '../svid/svid-service.ts';
import { Auditor } from './auditor.ts';

const TD = TrustDomain.parse('example.org');
const ctx: RequestContext = { caller: { kind: 'local-admin' }, correlationId: 'test' };

/** The real SQLite store, except that its audit sink refuses every write while `broken` is set. */
function withBrokenAudit(store: Store, state: { broken: boolean }): Store {
  const guard = (audit: AuditStore): AuditStore => ({
    ...audit,
    append: (e) => (state.broken ? Promise.reject(new Error('audit sink down')) : audit.append(e)),
    appendMany: (e) =>
      state.broken ? Promise.reject(new Error('audit sink down')) : audit.appendMany(e),
  });
  const wrap = (agg: StoreAggregates): StoreAggregates => ({ ...agg, audit: guard(agg.audit) });
  return {
    ...store,
    ...wrap(store),
    transaction: <T>(fn: (tx: StoreAggregates) => Promise<T>) =>
      store.transaction((tx) => fn(wrap(tx))),
  };
}

describe('audit fails closed', () => {
  const state = { broken: false };
  let real: Store;
  let store: Store;
  let entries: EntryService;
  let svids: SvidService;

  before(async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    real = await openStore(
      { kind: 'sqlite', path: path.join(mkdtempSync(path.join(os.tmpdir(), 'tessera-fc-')), 'db') },
      clock,
    );
    store = withBrokenAudit(real, state);
    const keys = new MemoryKeyManager();
    const auditor = new Auditor(clock, store);
    const authorities = await AuthorityManager.create({
      store,
      keys,
      auditor,
      clock,
      serverId: 's',
      trustDomain: TD.name,
      refreshHintSeconds: 60,
      factory: createAuthorityFactory({
        keys,
        trustDomain: TD.name,
        x509: { keyType: 'ec-p256', ttlMs: 3_600_000, upstream: null },
        jwt: { keyType: 'ec-p256', ttlMs: 3_600_000 },
      }),
    });
    entries = new EntryService({ store, auditor, clock, trustDomain: TD });
    svids = new SvidService({
      auditor,
      clock,
      minter: new Minter({ authorities, clock, issuer: '' }),
      index: new EntryIndex('spiffe://example.org/spire/server'),
      trustDomain: TD,
      defaultX509TtlMs: 60_000,
      defaultJwtTtlMs: 60_000,
    });
  });

  after(() => real.close());

  it('does not create an entry whose audit record cannot be written', async () => {
    state.broken = true;
    await assert.rejects(
      entries.batchCreate(ctx, [
        {
          spiffeId: 'spiffe://example.org/a',
          parentId: 'spiffe://example.org/p',
          selectors: ['unix:uid:1'],
        },
      ]),
      /audit sink down/,
    );
    state.broken = false;
    assert.equal(await real.entries.count(), 0);
    assert.deepEqual(await real.changes.since(0, 10), []);
  });

  it('does not hand out a JWT-SVID whose issuance cannot be audited', async () => {
    state.broken = true;
    await assert.rejects(
      svids.mintJwt(ctx, { spiffeId: 'spiffe://example.org/a', audience: ['x'], ttlMs: 0 }),
      /audit sink down/,
    );
    state.broken = false;
    const ok = await svids.mintJwt(ctx, {
      spiffeId: 'spiffe://example.org/a',
      audience: ['x'],
      ttlMs: 0,
    });
    assert.match(ok.token, /^ey/);
  });
});
