import assert from 'node:assert/strict';
import { it } from 'node:test';
import { msFromSeconds, secondsFromMs, ttlMsFromWire } from './time.ts';

it('converts instants between ms and wire seconds, rounding down', () => {
  assert.equal(secondsFromMs(1_700_000_000_999), 1_700_000_000n);
  assert.equal(msFromSeconds(1_700_000_000n), 1_700_000_000_000);
});

it('takes TTLs as whole seconds, 0 for the default, and refuses the rest', () => {
  assert.equal(ttlMsFromWire(0), 0);
  assert.equal(ttlMsFromWire(90), 90_000);
  for (const bad of [-1, 1.5, 10 * 365 * 86400 + 1]) {
    assert.throws(() => ttlMsFromWire(bad, 'x509_svid_ttl'), {
      name: 'InvalidArgumentError',
      message: 'x509_svid_ttl: must be a whole number of seconds, 0 for the default',
    });
  }
});
