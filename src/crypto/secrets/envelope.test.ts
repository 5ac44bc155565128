import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { dataKeyAad, kekCheckValue, openValue, sealValue, unwrapKey, wrapKey } from './envelope.ts';

const text = (s: string) => new Uint8Array(Buffer.from(s));
const B = { name: 'db-password', version: 3 };

describe('envelope encryption', () => {
  it('seals and opens a value; a fresh data key and nonce each time', () => {
    const a = sealValue(text('hunter2'), B);
    const b = sealValue(text('hunter2'), B);
    assert.notDeepEqual(a.dataKey, b.dataKey);
    assert.notDeepEqual(a.nonce, b.nonce);
    assert.ok(!Buffer.from(a.ciphertext).includes(Buffer.from('hunter2')));
    assert.equal(Buffer.from(openValue(a, a.dataKey, B)).toString(), 'hunter2');
  });

  it('an empty value round-trips', () => {
    const s = sealValue(new Uint8Array(0), B);
    assert.equal(openValue(s, s.dataKey, B).length, 0);
  });

  it('refuses a value moved to another name or version, or tampered with', () => {
    const s = sealValue(text('hunter2'), B);
    const fail = { name: 'DecryptionError', message: 'secret value: authentication failed' };
    assert.throws(() => openValue(s, s.dataKey, { ...B, name: 'other' }), fail);
    assert.throws(() => openValue(s, s.dataKey, { ...B, version: 4 }), fail);
    for (const i of [0, s.ciphertext.length - 1]) {
      const c = new Uint8Array(s.ciphertext);
      c[i] = (c[i] ?? 0) ^ 1;
      assert.throws(() => openValue({ ...s, ciphertext: c }, s.dataKey, B), fail);
    }
    const n = new Uint8Array(s.nonce);
    n[0] = (n[0] ?? 0) ^ 1;
    assert.throws(() => openValue({ ...s, nonce: n }, s.dataKey, B), fail);
    assert.throws(() => openValue(s, new Uint8Array(randomBytes(32)), B), fail);
    assert.throws(() => openValue({ ...s, ciphertext: new Uint8Array(3) }, s.dataKey, B), {
      message: 'secret value: malformed',
    });
  });

  it('wraps a data key under a KEK bound to the KEK id, name and version', () => {
    const kek = new Uint8Array(randomBytes(32));
    const dek = new Uint8Array(randomBytes(32));
    const w = wrapKey(kek, dek, dataKeyAad(B, 'k1'));
    assert.deepEqual(unwrapKey(kek, w, dataKeyAad(B, 'k1')), dek);
    const fail = { name: 'DecryptionError', message: 'wrapped data key: authentication failed' };
    assert.throws(() => unwrapKey(kek, w, dataKeyAad(B, 'k2')), fail);
    assert.throws(() => unwrapKey(kek, w, dataKeyAad({ ...B, version: 2 }, 'k1')), fail);
    assert.throws(() => unwrapKey(new Uint8Array(32), w, dataKeyAad(B, 'k1')), fail);
    const t = new Uint8Array(w);
    t[20] = (t[20] ?? 0) ^ 1;
    assert.throws(() => unwrapKey(kek, t, dataKeyAad(B, 'k1')), fail);
  });

  it('programming errors are TypeErrors', () => {
    assert.throws(() => sealValue(text('x'), { name: 'a', version: 0 }), TypeError);
    assert.throws(() => wrapKey(new Uint8Array(16), new Uint8Array(32), text('a')), TypeError);
  });

  it('the check value tells keys apart and is stable', () => {
    const k = new Uint8Array(randomBytes(32));
    assert.equal(kekCheckValue(k), kekCheckValue(new Uint8Array(k)));
    assert.notEqual(kekCheckValue(k), kekCheckValue(new Uint8Array(randomBytes(32))));
    assert.match(kekCheckValue(k), /^[0-9a-f]{64}$/);
  });
});
