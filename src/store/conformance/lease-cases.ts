// Conformance: LeaseStore — the state machine, scope matching, due leases and single claims.
import assert from 'node:assert/strict';
import type { Lease } from '../../core/access.ts';
import { type Cases, T0 } from './fixtures.ts';

export function makeLease(n: number, over: Partial<Lease> = {}): Lease {
  return {
    id: `lease-${String(n).padStart(4, '0')}`,
    provider: 'pg-orders',
    server: 'orders-db',
    client: `spiffe://example.org/w/${n}`,
    policy: 'orders-read',
    agent: 'spiffe://example.org/spire/agent/join_token/a',
    data: { role: `tessera_${n}` },
    expiresAt: T0 + 60_000,
    createdAt: T0 + n,
    ...over,
  };
}

export const leaseCases: Cases = {
  'create, get, activate, claim, end': async (s) => {
    const l = makeLease(1);
    await s.leases.create(l);
    assert.deepEqual(await s.leases.get(l.id), {
      ...l,
      state: 'creating',
      claimedAt: 0,
      endReason: '',
      endedAt: null,
    });
    assert.equal(await s.leases.activate(l.id), true);
    assert.equal(await s.leases.activate(l.id), false, 'only from creating');
    assert.equal((await s.leases.get(l.id))?.state, 'active');
    const claimed = await s.leases.claim(l.id, T0 + 10, 'policy deleted', T0 - 1);
    assert.equal(claimed?.state, 'ending');
    assert.equal(claimed?.claimedAt, T0 + 10);
    assert.equal(claimed?.endReason, 'policy deleted');
    assert.deepEqual(claimed?.data, { role: 'tessera_1' });
    assert.equal(await s.leases.activate(l.id), false, 'an ending lease is never activated');
    assert.equal(await s.leases.markEnded(l.id, T0 + 20), true);
    assert.equal(await s.leases.markEnded(l.id, T0 + 21), false);
    const ended = await s.leases.get(l.id);
    assert.equal(ended?.state, 'ended');
    assert.equal(ended?.endedAt, T0 + 20);
    assert.equal(await s.leases.claim(l.id, T0 + 30, 'again', T0 + 30), null, 'ended stays ended');
    assert.equal(await s.leases.get('missing'), null);
  },

  'a duplicate id is refused': async (s) => {
    await s.leases.create(makeLease(1));
    await assert.rejects(s.leases.create(makeLease(1)), { name: 'AlreadyExistsError' });
  },

  'listMatching needs a scope and matches every field given': async (s) => {
    await s.leases.create(makeLease(1));
    await s.leases.create(makeLease(2, { policy: 'other', agent: 'spiffe://example.org/a2' }));
    await s.leases.create(makeLease(3, { provider: 'pg-billing', server: 'billing-db' }));
    await s.leases.activate(makeLease(2).id);
    await assert.rejects(s.leases.listMatching({}, 10), { name: 'InvalidArgumentError' });
    const ids = async (scope: Parameters<typeof s.leases.listMatching>[0]) =>
      (await s.leases.listMatching(scope, 100)).map((l) => l.id);
    assert.deepEqual(await ids({ provider: 'pg-orders' }), ['lease-0001', 'lease-0002']);
    assert.deepEqual(await ids({ provider: 'pg-orders', policy: 'other' }), ['lease-0002']);
    assert.deepEqual(await ids({ server: 'billing-db' }), ['lease-0003']);
    assert.deepEqual(await ids({ client: 'spiffe://example.org/w/3' }), ['lease-0003']);
    assert.deepEqual(await ids({ agent: 'spiffe://example.org/a2' }), ['lease-0002']);
    assert.deepEqual(await ids({ policy: 'nope' }), []);
    assert.deepEqual(
      (await s.leases.listMatching({ provider: 'pg-orders' }, 1)).map((l) => l.id),
      ['lease-0001'],
    );
    await s.leases.claim('lease-0001', T0, 'r', T0);
    assert.deepEqual(await ids({ provider: 'pg-orders' }), ['lease-0002'], 'ending not listed');
    await assert.rejects(s.leases.listMatching({ provider: 'x' }, 0), {
      name: 'InvalidArgumentError',
    });
  },

  'listDue: expired, abandoned mid-creation, and stale claims': async (s) => {
    await s.leases.create(makeLease(1, { expiresAt: T0 + 100 })); // creating, expired at T0+100
    await s.leases.create(makeLease(2, { expiresAt: T0 + 50 })); // active, expired
    await s.leases.activate('lease-0002');
    await s.leases.create(makeLease(3, { expiresAt: T0 + 9_000 })); // active, live
    await s.leases.activate('lease-0003');
    await s.leases.create(makeLease(4, { expiresAt: T0 + 9_000 })); // creating, live
    await s.leases.create(makeLease(5, { expiresAt: T0 + 9_000 })); // ending, claimed at T0+10
    await s.leases.claim('lease-0005', T0 + 10, 'r', T0);
    const due = async (now: number, creatingBefore: number, claimedBefore: number) =>
      (await s.leases.listDue({ now, creatingBefore, claimedBefore }, 100)).map((l) => l.id);
    assert.deepEqual(await due(T0 + 100, 0, 0), ['lease-0002', 'lease-0001']);
    assert.deepEqual(await due(T0 + 99, 0, 0), ['lease-0002']);
    assert.deepEqual(await due(T0, T0 + 4, 0), ['lease-0001', 'lease-0004']);
    assert.deepEqual(await due(T0, 0, T0 + 10), ['lease-0005']);
    assert.deepEqual(await due(T0, 0, T0 + 9), []);
    assert.deepEqual(
      (await s.leases.listDue({ now: T0 + 100, creatingBefore: 0, claimedBefore: 0 }, 1)).map(
        (l) => l.id,
      ),
      ['lease-0002'],
    );
  },

  'a stale claim can be taken over, a fresh one cannot': async (s) => {
    await s.leases.create(makeLease(1));
    assert.ok(await s.leases.claim('lease-0001', T0 + 10, 'first', T0));
    assert.equal(await s.leases.claim('lease-0001', T0 + 20, 'second', T0 + 9), null);
    const again = await s.leases.claim('lease-0001', T0 + 30, 'second', T0 + 10);
    assert.equal(again?.claimedAt, T0 + 30);
    assert.equal(again?.endReason, 'second');
  },

  'of concurrent claims of one lease exactly one wins': async (s) => {
    await s.leases.create(makeLease(1));
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => s.leases.claim('lease-0001', T0 + i, `r${i}`, T0 - 1)),
    );
    assert.equal(results.filter((r) => r !== null).length, 1);
  },

  'pruneEnded removes ended leases only': async (s) => {
    for (const n of [1, 2, 3]) await s.leases.create(makeLease(n));
    await s.leases.claim('lease-0001', T0, 'r', T0);
    await s.leases.markEnded('lease-0001', T0 + 5);
    await s.leases.claim('lease-0002', T0, 'r', T0);
    await s.leases.markEnded('lease-0002', T0 + 50);
    assert.equal(await s.leases.pruneEnded(T0 + 4), 0);
    assert.equal(await s.leases.pruneEnded(T0 + 5), 1);
    assert.equal(await s.leases.get('lease-0001'), null);
    assert.equal((await s.leases.get('lease-0002'))?.state, 'ended');
    assert.equal((await s.leases.get('lease-0003'))?.state, 'creating');
  },

  'a lease created in a rolled-back transaction does not exist': async (s) => {
    await assert.rejects(
      s.transaction(async (tx) => {
        await tx.leases.create(makeLease(1));
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(await s.leases.get('lease-0001'), null);
  },
};
