import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { halfLifeAt } from './svid-life.ts';

const T = 1_000_000_000;
const SKEW = 10_000; // what the server backdates notBefore by

describe('halfLifeAt', () => {
  it('counts a short-lived SVID from its arrival, not from its backdated notBefore', () => {
    // Issued at T with a 6 s TTL: notBefore T − 10 s. Half of notAfter − notBefore (8 s) would
    // already be past at T; half of what is left on arrival is T + 3 s.
    assert.equal(halfLifeAt(T - SKEW, T + 6_000, T), T + 3_000);
    // Arriving 1 s after issuance: half of the 5 s left.
    assert.equal(halfLifeAt(T - SKEW, T + 6_000, T + 1_000), T + 3_500);
  });

  it('without an arrival time (read back from disk), counts from notBefore', () => {
    assert.equal(halfLifeAt(T - SKEW, T + 3_600_000), T - SKEW + 3_610_000 / 2);
  });

  it('clamps the arrival time into the validity period', () => {
    // An agent clock behind the server's: arrival before notBefore counts from notBefore.
    assert.equal(halfLifeAt(T, T + 10_000, T - 60_000), T + 5_000);
    // Arrival after expiry (a clock far ahead): due at once.
    assert.equal(halfLifeAt(T, T + 10_000, T + 60_000), T + 10_000);
  });
});
