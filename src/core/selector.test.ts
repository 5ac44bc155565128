import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MAX_SELECTOR_BYTES,
  canonicalSelectors,
  formatSelector,
  isSubset,
  parseSelector,
  selectorSetKey,
} from './selector.ts';

describe('parseSelector', () => {
  it('splits at the first colon; the value may hold colons', () => {
    assert.deepEqual(parseSelector('unix:uid:1000'), { type: 'unix', value: 'uid:1000' });
    assert.deepEqual(parseSelector('k8s.io_x-y:ns:a:b'), { type: 'k8s.io_x-y', value: 'ns:a:b' });
    assert.equal(formatSelector(parseSelector('docker:label:a=b')), 'docker:label:a=b');
  });

  it('rejects empty text and a missing type', () => {
    assert.throws(() => parseSelector(''), {
      name: 'InvalidArgumentError',
      message: 'invalid selector "": expected TYPE:VALUE',
    });
    for (const t of ['unix', ':uid:0']) {
      assert.throws(() => parseSelector(t), {
        name: 'InvalidArgumentError',
        message: `invalid selector "${t}": expected TYPE:VALUE`,
      });
    }
  });

  it('rejects a bad type', () => {
    for (const [t, type] of [
      ['Unix:uid:0', 'Unix'],
      ['-x:y', '-x'],
      ['a b:c', 'a b'],
      [`${'a'.repeat(65)}:v`, 'a'.repeat(65)],
    ] as const) {
      assert.throws(() => parseSelector(t), {
        name: 'InvalidArgumentError',
        message: `invalid selector "${t}": type "${type}" must be lowercase [a-z0-9_.-]`,
      });
    }
  });

  it('rejects an empty value and control characters', () => {
    assert.throws(() => parseSelector('unix:'), {
      name: 'InvalidArgumentError',
      message: 'invalid selector "unix:": empty value',
    });
    assert.throws(() => parseSelector('unix:a\nb'), {
      name: 'InvalidArgumentError',
      message: 'invalid selector "unix:...": value has control characters',
    });
  });

  it('limits the size in bytes', () => {
    const ok = 'unix:' + 'v'.repeat(MAX_SELECTOR_BYTES - 5);
    assert.equal(parseSelector(ok).value.length, MAX_SELECTOR_BYTES - 5);
    assert.throws(() => parseSelector(ok + 'v'), {
      name: 'InvalidArgumentError',
      message: 'invalid selector: longer than 1024 bytes',
    });
  });
});

describe('selector sets', () => {
  const a = { type: 'unix', value: 'uid:0' };
  const b = { type: 'unix', value: 'gid:0' };
  const c = { type: 'docker', value: 'image:x' };

  it('canonicalSelectors sorts and de-duplicates', () => {
    assert.deepEqual(canonicalSelectors([a, b, a, c]), [c, b, a]);
  });

  it('selectorSetKey is independent of order and repeats', () => {
    assert.equal(selectorSetKey([a, b, c]), selectorSetKey([c, a, b, a]));
    assert.notEqual(selectorSetKey([a, b]), selectorSetKey([a, c]));
  });

  it('isSubset checks every selector', () => {
    const set = new Set(['unix:uid:0', 'unix:gid:0']);
    assert.equal(isSubset([a, b], set), true);
    assert.equal(isSubset([], set), true);
    assert.equal(isSubset([a, c], set), false);
  });
});
