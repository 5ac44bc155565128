// Conformance: JoinTokenStore, single use under concurrency included.
import assert from 'node:assert/strict';
import { AlreadyExistsError } from '../../core/errors.ts';
import type { JoinTokenRecord } from '../types.ts';
import { type Cases, T0 } from './fixtures.ts';

const token = (n: number, over: Partial<JoinTokenRecord> = {}): JoinTokenRecord => ({
  tokenHash: n.toString(16).padStart(64, '0'),
  spiffeId: n % 2 === 0 ? '' : `spiffe://example.org/agent/${n}`,
  expiresAt: T0 + 1000,
  createdAt: T0,
  ...over,
});

export const joinTokenCases: Cases = {
  'consumes a token once; expired and unknown tokens give null': async (s) => {
    await s.joinTokens.create(token(1));
    await s.joinTokens.create(token(2, { expiresAt: T0 }));
    await assert.rejects(s.joinTokens.create(token(1)), {
      name: 'AlreadyExistsError',
      message: 'a join token with this hash already exists',
    });
    assert.deepEqual(await s.joinTokens.consume(token(1).tokenHash, T0), token(1));
    assert.equal(await s.joinTokens.consume(token(1).tokenHash, T0), null);
    assert.equal(await s.joinTokens.consume(token(2).tokenHash, T0), null, 'expired at now');
    assert.equal(await s.joinTokens.consume(token(3).tokenHash, T0), null);
  },

  'of 20 concurrent consumers exactly one wins': async (s) => {
    await s.joinTokens.create(token(7));
    const results = await Promise.all(
      Array.from({ length: 20 }, () => s.joinTokens.consume(token(7).tokenHash, T0)),
    );
    assert.equal(results.filter((r) => r !== null).length, 1);
  },

  'finds a pending token by hash prefix or custom SPIFFE ID, never an expired or used one': async (
    s,
  ) => {
    await s.joinTokens.create(token(10, { tokenHash: 'ab'.repeat(32) }));
    await s.joinTokens.create(token(11, { tokenHash: 'cd'.repeat(32) }));
    await s.joinTokens.create(token(12, { tokenHash: 'ef'.repeat(32), expiresAt: T0 }));
    const pending = (m: { hashPrefix: string } | { spiffeId: string }) =>
      s.joinTokens.pendingExists(m, T0);
    assert.equal(await pending({ hashPrefix: 'ab'.repeat(16) }), true);
    assert.equal(await pending({ hashPrefix: 'ab'.repeat(16) + 'ff' }), false);
    assert.equal(await pending({ hashPrefix: 'ef'.repeat(16) }), false, 'expired at now');
    assert.equal(await pending({ hashPrefix: '%' }), false, 'not a pattern');
    assert.equal(await pending({ hashPrefix: '' }), false);
    assert.equal(await pending({ spiffeId: 'spiffe://example.org/agent/11' }), true);
    assert.equal(await pending({ spiffeId: 'spiffe://example.org/agent/13' }), false);
    assert.equal(await pending({ spiffeId: '' }), false);
    await s.joinTokens.consume('ab'.repeat(32), T0);
    assert.equal(await pending({ hashPrefix: 'ab'.repeat(16) }), false, 'used');
  },

  'prunes expired tokens only': async (s) => {
    await s.joinTokens.create(token(1, { expiresAt: T0 - 1 }));
    await s.joinTokens.create(token(2, { expiresAt: T0 }));
    await s.joinTokens.create(token(3, { expiresAt: T0 + 1 }));
    assert.equal(await s.joinTokens.pruneExpired(T0), 2);
    assert.equal(await s.joinTokens.pruneExpired(T0), 0);
    assert.deepEqual(
      await s.joinTokens.consume(token(3).tokenHash, T0),
      token(3, { expiresAt: T0 + 1 }),
    );
    await assert.rejects(
      s.joinTokens.create(token(3)).then(() => s.joinTokens.create(token(3))),
      AlreadyExistsError,
    );
  },
};
