// Conformance: DpopProofStore — single use by the database, concurrency, expiry, pruning.
import assert from 'node:assert/strict';
import { type Cases, T0 } from './fixtures.ts';

export const dpopProofCases: Cases = {
  'a jti is recorded once; a second record is refused': async (s) => {
    assert.equal(await s.dpopProofs.record('jti-1', T0 + 1000, T0), true);
    assert.equal(await s.dpopProofs.record('jti-1', T0 + 1000, T0 + 1), false);
    assert.equal(await s.dpopProofs.record('jti-1', T0 + 9000, T0 + 2), false, 'a later expiry');
    assert.equal(await s.dpopProofs.record('JTI-1', T0 + 1000, T0), true, 'case-sensitive');
    assert.equal(await s.dpopProofs.record('jti-2', T0 + 1000, T0), true);
  },

  'of concurrent records of one jti exactly one wins': async (s) => {
    const results = await Promise.all(
      Array.from({ length: 12 }, () => s.dpopProofs.record('race', T0 + 1000, T0)),
    );
    assert.equal(results.filter((r) => r).length, 1);
  },

  'an expired record does not block, and is renewed': async (s) => {
    assert.equal(await s.dpopProofs.record('j', T0 + 1000, T0), true);
    assert.equal(await s.dpopProofs.record('j', T0 + 5000, T0 + 999), false);
    assert.equal(await s.dpopProofs.record('j', T0 + 5000, T0 + 1000), true, 'expired at now');
    assert.equal(await s.dpopProofs.record('j', T0 + 5000, T0 + 1001), false, 'renewed record');
    assert.equal(await s.dpopProofs.pruneExpired(T0 + 4999), 0);
    assert.equal(await s.dpopProofs.pruneExpired(T0 + 5000), 1);
  },

  'prunes expired records only': async (s) => {
    await s.dpopProofs.record('a', T0 - 1, T0 - 10);
    await s.dpopProofs.record('b', T0, T0 - 10);
    await s.dpopProofs.record('c', T0 + 1, T0 - 10);
    assert.equal(await s.dpopProofs.pruneExpired(T0), 2);
    assert.equal(await s.dpopProofs.pruneExpired(T0), 0);
    assert.equal(await s.dpopProofs.record('c', T0 + 1, T0), false);
    assert.equal(await s.dpopProofs.record('a', T0 + 1, T0), true);
  },

  'records inside a transaction roll back with it': async (s) => {
    await assert.rejects(
      s.transaction(async (tx) => {
        assert.equal(await tx.dpopProofs.record('t', T0 + 1000, T0), true);
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(await s.dpopProofs.record('t', T0 + 1000, T0), true);
  },
};
