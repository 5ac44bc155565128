import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nonNegativeBigInt, positiveInt, selectors, ttlSeconds, unixSeconds } from './args.ts';

test('ttlSeconds: units, bare seconds, and refusals', () => {
  assert.equal(ttlSeconds('1h', '--ttl'), 3600);
  assert.equal(ttlSeconds('90s', '--ttl'), 90);
  assert.equal(ttlSeconds('120', '--ttl'), 120);
  assert.throws(() => ttlSeconds('1500ms', '--ttl'), /--ttl: must be a whole number of seconds/);
  assert.throws(() => ttlSeconds('soon', '--ttl'), /--ttl: invalid duration/);
  assert.throws(() => ttlSeconds('0s', '--ttl'), /positive/);
});

test('unixSeconds: RFC 3339 and Unix seconds', () => {
  assert.equal(unixSeconds('2030-01-01T00:00:00Z', '--t'), 1893456000n);
  assert.equal(unixSeconds('2030-01-01T01:00:00+01:00', '--t'), 1893456000n);
  assert.equal(unixSeconds('1893456000', '--t'), 1893456000n);
  assert.throws(() => unixSeconds('tomorrow', '--t'), /--t: invalid time/);
  assert.throws(() => unixSeconds('2030-01-01', '--t'), /invalid time/);
});

test('selectors and integers', () => {
  assert.deepEqual(selectors(['unix:uid:0']), [{ type: 'unix', value: 'uid:0' }]);
  assert.throws(() => selectors(['nocolon']), /--selector: invalid selector/);
  assert.equal(positiveInt('10', '--n', 100), 10);
  assert.throws(() => positiveInt('0', '--n'), /--n: must be an integer/);
  assert.throws(() => positiveInt('1e3', '--n'), /--n/);
  assert.equal(nonNegativeBigInt('0', '--after'), 0n);
  assert.throws(() => nonNegativeBigInt('-1', '--after'), /--after/);
});
