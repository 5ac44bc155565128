import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { unsafeRegex } from './regex-safety.ts';

describe('unsafeRegex', () => {
  it('flags nested quantifiers, quantified alternation and back-references only', () => {
    assert.equal(unsafeRegex('^refs/heads/(main|release-[0-9]+)$'), undefined);
    assert.equal(unsafeRegex('^[a-z]+(/[a-z]+)?$'), undefined);
    assert.equal(unsafeRegex('(?:ab)+'), undefined);
    assert.equal(unsafeRegex('(a+)+$'), 'a quantified group contains a quantifier or "|"');
    assert.equal(unsafeRegex('(a|aa)*'), 'a quantified group contains a quantifier or "|"');
    assert.equal(unsafeRegex('((a)*b)+'), 'a quantified group contains a quantifier or "|"');
    assert.equal(unsafeRegex('(a)\\1'), 'back-references are not allowed');
  });
});
