import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, parseDuration } from './duration.ts';

const UNITS_HINT = '(use a number with a unit: ms, s, m, h, d; e.g. 90s, 1h30m)';

describe('parseDuration', () => {
  it('parses each unit', () => {
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('2h'), 7_200_000);
    assert.equal(parseDuration('1d'), 86_400_000);
  });

  it('reads a bare number as seconds, as SPIRE *_ttl fields do', () => {
    assert.equal(parseDuration('300'), 300_000);
    assert.equal(parseDuration('1'), 1000);
  });

  it('adds compound durations and fractions, trimming whitespace', () => {
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('1d2h3m4s5ms'), 93_784_005);
    assert.equal(parseDuration('1.5h'), 5_400_000);
    assert.equal(parseDuration(' 5m '), 300_000);
  });

  it('accepts up to 100 years and rejects longer', () => {
    assert.equal(parseDuration('36500d'), 36_500 * 86_400_000);
    assert.throws(() => parseDuration('36501d', 'ca.ttl'), {
      name: 'InvalidArgumentError',
      message: 'ca.ttl: duration "36501d" is too long',
    });
  });

  it('rejects zero, naming the field', () => {
    for (const t of ['0', '0s', '0h0m']) {
      assert.throws(() => parseDuration(t, 'ttl'), {
        name: 'InvalidArgumentError',
        message: `ttl: duration must be positive, got "${t}"`,
      });
    }
  });

  it('rejects empty and over-long text', () => {
    assert.throws(() => parseDuration(''), {
      name: 'InvalidArgumentError',
      message: 'duration: invalid duration ""',
    });
    const long = '1s'.repeat(33);
    assert.throws(() => parseDuration(long, 'ttl'), {
      name: 'InvalidArgumentError',
      message: `ttl: invalid duration "${long}"`,
    });
  });

  it('rejects unknown units, signs, spaces inside and exponents with a hint', () => {
    for (const t of ['abc', '5x', '1y', '-5s', '1h 30m', '1e3s', 'h', '5m3']) {
      assert.throws(() => parseDuration(t, 'jwt.ttl'), {
        name: 'InvalidArgumentError',
        message: `jwt.ttl: invalid duration "${t}" ${UNITS_HINT}`,
      });
    }
  });

  it('omits the prefix when the field name is empty', () => {
    assert.throws(() => parseDuration('nope', ''), {
      name: 'InvalidArgumentError',
      message: `invalid duration "nope" ${UNITS_HINT}`,
    });
  });
});

describe('formatDuration', () => {
  it('formats compactly from days down to seconds', () => {
    assert.equal(formatDuration(1000), '1s');
    assert.equal(formatDuration(90_000), '1m30s');
    assert.equal(formatDuration(5_400_000), '1h30m');
    assert.equal(formatDuration(86_400_000), '1d');
    assert.equal(formatDuration(90_061_000), '1d1h1m1s');
  });

  it('shows sub-second values in ms and non-positive values as 0s', () => {
    assert.equal(formatDuration(400), '400ms');
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(-5), '0s');
  });

  it('round-trips whole seconds through parseDuration', () => {
    for (const ms of [1000, 59_000, 3_600_000, 5_400_000, 90_061_000, 30 * 86_400_000]) {
      assert.equal(parseDuration(formatDuration(ms)), ms);
    }
  });
});
