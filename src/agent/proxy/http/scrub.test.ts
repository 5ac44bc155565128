import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Scrubber } from './scrub.ts';

/** The stream `pieces` through one body scan, as text. */
function scrub(s: Scrubber, pieces: string[]): string {
  const body = s.body();
  let out = '';
  for (const p of pieces) out += body.push(Buffer.from(p)).toString();
  return out + body.end().toString();
}

test('every secret is masked wherever the stream is cut, once or twice', () => {
  const s = new Scrubber(['tok-ABCDEF', 'tok-ABC', 'tok%2DABCDEF']);
  const text = 'a tok-ABCDEF b tok-ABC c tok%2DABCDEF d tok-AB e tok-ABCDEtok-ABCDEF';
  const want = 'a ********** b ******* c ************ d tok-AB e *******DE**********';
  for (let i = 0; i <= text.length; i++) {
    assert.equal(scrub(s, [text.slice(0, i), text.slice(i)]), want, `cut at ${i}`);
    for (let j = i; j <= text.length; j += 3) {
      const pieces = [text.slice(0, i), text.slice(i, j), text.slice(j)];
      assert.equal(scrub(s, pieces), want, `cut at ${i} and ${j}`);
    }
  }
  assert.equal(scrub(s, [...text]), want, 'one byte at a time');
});

test('a chunk with nothing to mask passes as the same buffer; only a possible start is held', () => {
  const s = new Scrubber(['secret-token']);
  const body = s.body();
  const clean = Buffer.from('{"items":[1,2,3]}');
  assert.equal(body.push(clean), clean, 'not copied');
  assert.equal(body.push(Buffer.from('xx secr')).toString(), 'xx ');
  assert.equal(body.push(Buffer.from('et-token yy')).toString(), '************ yy');
  assert.equal(body.push(Buffer.from('s')).toString(), '', 'held: it may begin a secret');
  assert.equal(body.end().toString(), 's');
});

test('header values are masked, also when the secret arrives as latin1 text of UTF-8', () => {
  const s = new Scrubber(['tök']);
  assert.equal(s.text('x tök y'), 'x *** y');
  assert.equal(s.text(`x ${Buffer.from('tök').toString('latin1')} y`), 'x **** y');
});
