import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../../core/clock.ts';
import { TokenCache, refreshAt } from './token-cache.ts';

describe('TokenCache', () => {
  it('refreshes 10% of the life before expiry, at most 60 s before', () => {
    assert.equal(refreshAt(0, 100_000), 90_000, '100 s token: 10 s early');
    assert.equal(refreshAt(0, 3_600_000), 3_540_000, '1 h token: 60 s early');
  });

  it('one fetch for concurrent callers; a failure is not cached', async () => {
    const clock = new ManualClock(0);
    let calls = 0;
    let fail = false;
    let release: () => void = () => {};
    const cache = new TokenCache(async () => {
      calls++;
      await new Promise<void>((r) => (release = r));
      if (fail) throw new Error('endpoint down');
      return { token: `t${calls}`, expiresAt: 100_000, refreshAt: 90_000 };
    }, clock.now.bind(clock));
    const waiting = Promise.all([cache.get(), cache.get(), cache.get()]);
    release();
    assert.deepEqual(
      (await waiting).map((t) => t.token),
      ['t1', 't1', 't1'],
    );
    assert.equal(calls, 1);
    clock.set(89_999);
    assert.equal((await cache.get()).token, 't1');
    clock.set(90_000);
    fail = true;
    const failing = Promise.allSettled([cache.get(), cache.get()]);
    release();
    assert.deepEqual(
      (await failing).map((r) => r.status),
      ['rejected', 'rejected'],
    );
    assert.equal(calls, 2);
    fail = false;
    const next = cache.get();
    release();
    assert.equal((await next).token, 't3');
  });
});
