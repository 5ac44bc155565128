import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../../core/clock.ts';
import { ClientCredentialCache, cloudRefreshAt } from './client-cache.ts';

const MIN = 60_000;

describe('ClientCredentialCache', () => {
  it('refreshes 6 minutes before expiry (SDK window + 1 min), never before half the life', () => {
    assert.equal(cloudRefreshAt(0, 60 * MIN), 54 * MIN);
    assert.equal(cloudRefreshAt(0, 15 * MIN), 9 * MIN);
    assert.equal(cloudRefreshAt(0, 8 * MIN), 4 * MIN, 'short life: half of it');
  });

  it('single flight per key; keys apart; a failure is not cached', async () => {
    const clock = new ManualClock(0);
    const cache = new ClientCredentialCache<{ v: string; expiresAt: number }>(
      clock.now.bind(clock),
    );
    let calls = 0;
    let fail = false;
    const fetch = (v: string) => async () => {
      const n = ++calls;
      await Promise.resolve();
      if (fail) throw new Error('down');
      return { v: `${v}${n}`, expiresAt: clock.now() + 60 * MIN };
    };
    const [a, b, c] = await Promise.all([
      cache.get('a', fetch('a')),
      cache.get('a', fetch('a')),
      cache.get('b', fetch('b')),
    ]);
    assert.equal(calls, 2);
    assert.equal(a.v, 'a1');
    assert.equal(b, a);
    assert.equal(c.v, 'b2');
    clock.set(54 * MIN - 1);
    assert.equal((await cache.get('a', fetch('a'))).v, 'a1');
    clock.set(54 * MIN);
    fail = true;
    await assert.rejects(cache.get('a', fetch('a')), /down/);
    fail = false;
    assert.equal((await cache.get('a', fetch('a'))).v, 'a4');
  });

  it('keeps at most `max` clients: stale ones go first, then the oldest', async () => {
    const clock = new ManualClock(0);
    const cache = new ClientCredentialCache<{ expiresAt: number }>(clock.now.bind(clock), 2);
    const value = (life: number) => async () => ({ expiresAt: clock.now() + life });
    await cache.get('short', value(10 * MIN)); // refreshAt 5 min
    await cache.get('long', value(60 * MIN));
    clock.set(6 * MIN);
    await cache.get('new', value(60 * MIN));
    assert.equal(cache.size, 2);
    let fetched = false;
    await cache.get('long', async () => ((fetched = true), { expiresAt: 0 }));
    assert.equal(fetched, false, 'the stale entry was dropped, not the live one');
    await cache.get('third', value(60 * MIN));
    assert.equal(cache.size, 2);
  });
});
