import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { roleSessionName } from './session-name.ts';

describe('roleSessionName', () => {
  it('maps "/" to "+" (absent from SPIFFE IDs), so distinct IDs stay distinct', () => {
    assert.equal(
      roleSessionName('spiffe://example.org/ns/prod/sa/web'),
      'example.org+ns+prod+sa+web',
    );
    assert.notEqual(roleSessionName('spiffe://td/a-b'), roleSessionName('spiffe://td/a/b'));
  });

  it('long IDs are cut to 64 characters and keep a hash of the whole ID', () => {
    const long = `spiffe://example.org/${'segment/'.repeat(12)}web`;
    const name = roleSessionName(long);
    assert.equal(name.length, 64);
    assert.match(name, /^example\.org\+segment\+[\w+.-]+=[0-9a-f]{12}$/);
    assert.equal(roleSessionName(long), name, 'deterministic');
    assert.notEqual(roleSessionName(long + 'x'), name);
  });

  it('anything outside [\\w+=,.@-] is replaced and the hash added', () => {
    const name = roleSessionName('spiffe://td/a b');
    assert.match(name, /^td\+a-b=[0-9a-f]{12}$/);
    assert.match(name, /^[\w+=,.@-]{2,64}$/);
  });
});
