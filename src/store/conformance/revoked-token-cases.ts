// Conformance: RevokedTokenStore — idempotent revocation, lookups, pruning, concurrency.
import assert from 'node:assert/strict';
import { type Cases, T0 } from './fixtures.ts';

export const revokedTokenCases: Cases = {
  'a revoked jti is revoked; others are not': async (s) => {
    assert.equal(await s.revokedTokens.isRevoked('jti-1'), false);
    await s.revokedTokens.revoke('jti-1', T0 + 1000, T0);
    assert.equal(await s.revokedTokens.isRevoked('jti-1'), true);
    assert.equal(await s.revokedTokens.isRevoked('jti-2'), false);
    assert.equal(await s.revokedTokens.isRevoked('JTI-1'), false, 'case-sensitive');
  },

  'revoking twice is a no-op, concurrently too': async (s) => {
    await s.revokedTokens.revoke('jti-1', T0 + 1000, T0);
    await s.revokedTokens.revoke('jti-1', T0 + 5000, T0 + 1);
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => s.revokedTokens.revoke('jti-2', T0 + 1000, T0 + i)),
    );
    assert.equal(await s.revokedTokens.isRevoked('jti-1'), true);
    assert.equal(await s.revokedTokens.isRevoked('jti-2'), true);
    // The first record stays: it is pruned at its own expiry, not the second one's.
    assert.equal(await s.revokedTokens.pruneExpired(T0 + 1000), 2);
    assert.equal(await s.revokedTokens.isRevoked('jti-1'), false);
  },

  'prunes records of expired tokens only': async (s) => {
    await s.revokedTokens.revoke('a', T0 - 1, T0 - 10);
    await s.revokedTokens.revoke('b', T0, T0 - 10);
    await s.revokedTokens.revoke('c', T0 + 1, T0 - 10);
    assert.equal(await s.revokedTokens.pruneExpired(T0), 2);
    assert.equal(await s.revokedTokens.pruneExpired(T0), 0);
    assert.equal(await s.revokedTokens.isRevoked('a'), false);
    assert.equal(await s.revokedTokens.isRevoked('b'), false);
    assert.equal(await s.revokedTokens.isRevoked('c'), true);
  },

  'revocations inside a transaction roll back with it': async (s) => {
    await assert.rejects(
      s.transaction(async (tx) => {
        await tx.revokedTokens.revoke('t', T0 + 1000, T0);
        assert.equal(await tx.revokedTokens.isRevoked('t'), true);
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(await s.revokedTokens.isRevoked('t'), false);
  },
};
