// LeaseManager over a real SQLite store and the real Auditor; providers are small real objects
// that count what they were asked to end.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { Lease } from '../../core/access.ts';
import { ManualClock } from '../../core/clock.ts';
import type { CredentialProvider } from '../../plugins/credential-providers/catalog.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import { Auditor } from '../audit/auditor.ts';
import { type LeaseAudit, LeaseManager, type LeaseManagerOptions } from './lease-manager.ts';

const T0 = 1_800_000_000_000;

class CountingProvider implements CredentialProvider {
  readonly type = 'test';
  readonly name: string;
  readonly ended: string[] = [];
  failing = false;
  constructor(name: string) {
    this.name = name;
  }
  release(): never {
    throw new Error('not used');
  }
  async endLease(lease: Lease): Promise<void> {
    if (this.failing) throw new Error('database down');
    this.ended.push(lease.id);
  }
}

function lease(n: number, over: Partial<Lease> = {}): Lease {
  return {
    id: `l${n}`,
    provider: 'pg',
    server: 'db',
    client: `spiffe://td/w${n}`,
    policy: 'pol',
    agent: 'spiffe://td/agent',
    data: { role: `r${n}` },
    expiresAt: T0 + 60_000,
    createdAt: T0,
    ...over,
  };
}

describe('LeaseManager', () => {
  let dir = '';
  let n = 0;
  let store: Store;
  let clock: ManualClock;
  let provider: CountingProvider;
  const warnings: string[] = [];

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tessera-leases-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));
  beforeEach(async () => {
    await store?.close();
    store = await openStore({ kind: 'sqlite', path: path.join(dir, `s${n++}.db`) });
    clock = new ManualClock(T0);
    provider = new CountingProvider('pg');
    warnings.length = 0;
  });

  function manager(o: Partial<LeaseManagerOptions> = {}) {
    return new LeaseManager({
      leases: store.leases,
      clock,
      audit: new Auditor(clock, store),
      log: { warn: (f, m) => warnings.push(`${m}: ${String(f.err ?? '')}`), info: () => {} },
      providerFor: (name) => (name === provider.name ? provider : undefined),
      ...o,
    });
  }

  async function active(m: LeaseManager, l: Lease) {
    await m.record(l);
    assert.equal(await m.activate(l.id), true);
  }

  it('endWhere ends the matching leases through their provider, audited, once', async () => {
    const m = manager();
    await active(m, lease(1));
    await active(m, lease(2, { policy: 'other' }));
    await m.record(lease(3)); // still creating: ended too (its role may exist)
    assert.equal(await m.endWhere({ policy: 'pol' }, 'policy deleted'), 2);
    assert.deepEqual(provider.ended.sort(), ['l1', 'l3']);
    assert.equal((await store.leases.get('l1'))?.state, 'ended');
    assert.equal((await store.leases.get('l2'))?.state, 'active');
    assert.equal(await m.activate('l3'), false, 'a lease ended mid-creation is never activated');
    const audit = await store.audit.list({ action: 'lease.end' }, 10);
    assert.deepEqual(audit.map((r) => [r.target, r.actor, r.details.reason]).sort(), [
      ['l1', 'local-admin', 'policy deleted'],
      ['l3', 'local-admin', 'policy deleted'],
    ]);
    assert.equal(await m.endWhere({ policy: 'pol' }, 'again'), 0);
    assert.deepEqual(provider.ended.sort(), ['l1', 'l3']);
  });

  it("endWhere takes the caller's context for the audit record", async () => {
    const m = manager();
    await active(m, lease(1));
    await m.endWhere({ client: 'spiffe://td/w1' }, 'entry deleted', {
      caller: { kind: 'admin', spiffeId: 'spiffe://td/admin' },
      correlationId: 'c-42',
    });
    const [rec] = await store.audit.list({ action: 'lease.end' }, 10);
    assert.equal(rec?.actor, 'spiffe://td/admin');
    assert.equal(rec?.correlationId, 'c-42');
  });

  it('an empty scope and malformed leases are refused', async () => {
    const m = manager();
    await assert.rejects(m.endWhere({}, 'x'), {
      name: 'InvalidArgumentError',
      message: 'lease scope: at least one field is required',
    });
    await assert.rejects(m.record(lease(1, { expiresAt: T0 })), {
      name: 'InvalidArgumentError',
      message: 'lease: expiresAt must be after createdAt',
    });
    await assert.rejects(m.record(lease(1, { data: { role: 'x'.repeat(2000) } })), {
      name: 'InvalidArgumentError',
    });
    assert.equal(await store.leases.get('l1'), null);
  });

  it('sweep ends expired leases and ones abandoned mid-creation, not live ones', async () => {
    const m = manager({ creatingGraceMs: 30_000 });
    await active(m, lease(1, { expiresAt: T0 + 10_000 }));
    await active(m, lease(2, { expiresAt: T0 + 90_000 }));
    await m.record(lease(3, { expiresAt: T0 + 90_000 }));
    clock.set(T0 + 10_000);
    assert.equal(await m.sweep(), 1);
    assert.deepEqual(provider.ended, ['l1']);
    clock.set(T0 + 30_000);
    assert.equal(await m.sweep(), 1);
    assert.deepEqual(provider.ended, ['l1', 'l3']);
    assert.equal((await store.leases.get('l3'))?.endReason, 'abandoned during creation');
    assert.equal((await store.leases.get('l2'))?.state, 'active');
  });

  it('a failed ending stays claimed and is retried after the claim timeout', async () => {
    const m = manager({ claimTimeoutMs: 60_000 });
    await active(m, lease(1));
    provider.failing = true;
    assert.equal(await m.endWhere({ provider: 'pg' }, 'provider deleted'), 0);
    assert.match(warnings.join('\n'), /provider failed; retried later: database down/);
    assert.equal((await store.leases.get('l1'))?.state, 'ending');
    provider.failing = false;
    clock.advance(59_999);
    assert.equal(await m.sweep(), 0, 'claim still fresh');
    clock.advance(1);
    assert.equal(await m.sweep(), 1);
    const l = await store.leases.get('l1');
    assert.equal(l?.state, 'ended');
    assert.equal(l?.endReason, 'provider deleted', 'the original reason is kept');
  });

  it('fails closed: an ending that cannot be audited is not marked ended', async () => {
    const failing: LeaseAudit = { log: () => Promise.reject(new Error('audit store down')) };
    const m = manager({ audit: failing, claimTimeoutMs: 1000 });
    await active(m, lease(1));
    assert.equal(await m.endWhere({ provider: 'pg' }, 'r'), 0);
    assert.equal((await store.leases.get('l1'))?.state, 'ending');
    assert.match(warnings.join('\n'), /not audited/);
    clock.advance(1000);
    assert.equal(await manager({ claimTimeoutMs: 1000 }).sweep(), 1, 'a healthy manager retries');
    assert.equal((await store.leases.get('l1'))?.state, 'ended');
    assert.equal((await store.audit.list({ action: 'lease.end' }, 10)).length, 1);
  });

  it('a lease whose provider is not loaded is left for later', async () => {
    const m = manager();
    await active(m, lease(1, { provider: 'gone' }));
    assert.equal(await m.endWhere({ provider: 'gone' }, 'r'), 0);
    assert.match(warnings.join('\n'), /not loaded/);
    assert.equal((await store.leases.get('l1'))?.state, 'ending');
  });

  it('providerFor may build the provider asynchronously (after a restart)', async () => {
    const m = manager({ providerFor: async (name) => (name === 'pg' ? provider : undefined) });
    await active(m, lease(1));
    assert.equal(await m.endWhere({ provider: 'pg' }, 'r'), 1);
    const broken = manager({ providerFor: () => Promise.reject(new Error('record unreadable')) });
    await active(broken, lease(2));
    assert.equal(await broken.endWhere({ provider: 'pg' }, 'r'), 0);
    assert.match(warnings.join('\n'), /provider not built; retried later: record unreadable/);
  });

  it('two managers sharing the store end each lease exactly once', async () => {
    const a = manager();
    const b = manager();
    for (let i = 0; i < 30; i++) await active(a, lease(i, { expiresAt: T0 + 1000 }));
    clock.set(T0 + 1000);
    const [x, y] = await Promise.all([a.sweep(), b.endWhere({ server: 'db' }, 'server deleted')]);
    assert.equal(x + y, 30);
    assert.equal(provider.ended.length, 30);
    assert.equal(new Set(provider.ended).size, 30);
    assert.equal((await store.audit.list({ action: 'lease.end' }, 100)).length, 30);
  });

  it('run sweeps at start and then every interval until aborted; a sweep is bounded', async () => {
    const sleeps: number[] = [];
    let wake: () => void = () => {};
    const m = manager({
      batchSize: 2,
      maxBatchesPerSweep: 2,
      sweepIntervalMs: 5000,
      sleep: (ms) => {
        sleeps.push(ms);
        return new Promise<void>((r) => (wake = r));
      },
    });
    for (let i = 0; i < 6; i++) await active(m, lease(i, { expiresAt: T0 + 1 }));
    clock.set(T0 + 1);
    const ac = new AbortController();
    const running = m.run(ac.signal);
    const deadline = Date.now() + 30_000;
    while (sleeps.length < 1 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    assert.equal(provider.ended.length, 4, 'two batches of two');
    assert.deepEqual(sleeps, [5000]);
    wake();
    while (sleeps.length < 2 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    assert.equal(provider.ended.length, 6);
    ac.abort();
    wake();
    await running;
  });
});
