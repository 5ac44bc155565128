import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RateLimiter } from './rate-limit.ts';

describe('RateLimiter', () => {
  it('allows a burst, then the sustained rate, per key', () => {
    let now = 0;
    const l = new RateLimiter({ perSecond: 2, burst: 3, now: () => now });
    assert.deepEqual(
      [1, 2, 3, 4].map(() => l.take('a')),
      [true, true, true, false],
    );
    assert.equal(l.take('b'), true, 'another address has its own bucket');
    assert.equal(l.retryAfterSeconds('a'), 1);
    now += 500; // one token back at 2/s
    assert.equal(l.take('a'), true);
    assert.equal(l.take('a'), false);
    now += 10_000; // refills up to the burst, not beyond
    assert.deepEqual(
      [1, 2, 3, 4].map(() => l.take('a')),
      [true, true, true, false],
    );
  });

  it('is off with a rate of 0', () => {
    const l = new RateLimiter({ perSecond: 0, burst: 1 });
    assert.equal(l.enabled, false);
    for (let i = 0; i < 100; i++) assert.equal(l.take('a'), true);
  });

  it('holds at most maxKeys buckets, dropping the least recently seen', () => {
    const now = 0;
    const l = new RateLimiter({ perSecond: 1, burst: 1, maxKeys: 2, now: () => now });
    assert.equal(l.take('a'), true);
    assert.equal(l.take('b'), true);
    assert.equal(l.take('a'), false); // a is now the most recent
    assert.equal(l.take('c'), true); // evicts b
    assert.equal(l.take('a'), false, 'a kept its empty bucket');
    assert.equal(l.take('b'), true, 'b starts again with a full bucket');
  });
});
