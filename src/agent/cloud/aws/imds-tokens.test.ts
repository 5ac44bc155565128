import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ImdsTokens, MAX_TOKENS, parseTtl } from './imds-tokens.ts';

describe('IMDSv2 session tokens', () => {
  it('parses the TTL header as EC2 does: an integer 1..21600', () => {
    assert.equal(parseTtl('1'), 1);
    assert.equal(parseTtl('21600'), 21600);
    for (const bad of [undefined, '', '0', '21601', '-1', '1.5', ' 60', '60s', ['60']]) {
      assert.equal(parseTtl(bad), null, String(bad));
    }
  });

  it('binds a token to the process that asked, until its TTL ends', () => {
    let now = 1_000_000;
    const t = new ImdsTokens(() => now);
    const token = t.issue('42:1000', 60);
    assert.equal(t.check(token, '42:1000'), 'ok');
    assert.equal(t.check(token, '42:2000'), 'foreign', 'same pid, another process');
    assert.equal(t.check(token, '43:1000'), 'foreign');
    assert.equal(t.check(undefined, '42:1000'), 'missing');
    assert.equal(t.check('', '42:1000'), 'missing');
    assert.equal(t.check('made-up', '42:1000'), 'unknown');
    now += 60_000;
    assert.equal(t.check(token, '42:1000'), 'expired');
    assert.equal(t.check(token, '42:1000'), 'unknown', 'dropped once seen expired');
  });

  it('keeps at most MAX_TOKENS, dropping expired ones first, then the oldest', () => {
    let now = 0;
    const t = new ImdsTokens(() => now);
    const old = t.issue('p', 1);
    now = 500;
    for (let i = 1; i < MAX_TOKENS; i++) t.issue('p', 60);
    now = 2000;
    const kept = t.issue('p', 60);
    assert.equal(t.size, MAX_TOKENS);
    assert.equal(t.check(old, 'p'), 'unknown');
    assert.equal(t.check(kept, 'p'), 'ok');
  });
});
