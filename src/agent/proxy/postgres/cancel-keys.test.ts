import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CancelKeys } from './cancel-keys.ts';

test('a proxy key resolves to the real key only for its server workload and uid', () => {
  const keys = new CancelKeys();
  const real = { pid: 4242, secret: 123456 };
  const issued = keys.issue(real, 'db', 1000);
  assert.ok(issued);
  const { key } = issued;
  assert.notDeepEqual(key, real);
  assert.deepEqual(keys.resolve(key, 'db', 1000), real);
  assert.equal(keys.resolve({ pid: key.pid, secret: key.secret ^ 1 }, 'db', 1000), undefined);
  assert.equal(keys.resolve(key, 'other-db', 1000), undefined);
  assert.equal(keys.resolve(key, 'db', 1001), undefined);
  assert.equal(keys.resolve(real, 'db', 1000), undefined);
  issued.release();
  assert.equal(keys.resolve(key, 'db', 1000), undefined);
  assert.equal(keys.size, 0);
});

test('past the bound, sessions get no key (and nothing grows)', () => {
  const keys = new CancelKeys(2);
  assert.ok(keys.issue({ pid: 1, secret: 1 }, 'db', 0));
  assert.ok(keys.issue({ pid: 2, secret: 2 }, 'db', 0));
  assert.equal(keys.issue({ pid: 3, secret: 3 }, 'db', 0), undefined);
  assert.equal(keys.size, 2);
});
