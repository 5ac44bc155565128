import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { describe, it } from 'node:test';
import { ecdsaDerToP1363, ecdsaP1363ToDer } from './ecdsa-signature.ts';

describe('ECDSA signature encodings', () => {
  for (const [curve, size] of [
    ['P-256', 32],
    ['P-384', 48],
  ] as const) {
    it(`converts ${curve} signatures both ways (incl. short r/s)`, () => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
      for (let i = 0; i < 200; i++) {
        const data = Buffer.from(`msg ${i}`);
        const der = sign(null, data, privateKey);
        const p1363 = ecdsaDerToP1363(der, size);
        assert.equal(p1363.length, 2 * size);
        assert.ok(verify(null, data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, p1363));
        assert.deepEqual(Buffer.from(ecdsaP1363ToDer(p1363)), der);
      }
    });
  }

  it('rejects malformed DER', () => {
    assert.throws(() => ecdsaDerToP1363(Uint8Array.of(1, 2, 3), 32), /malformed/);
    assert.throws(
      () => ecdsaDerToP1363(Uint8Array.of(0x30, 0x04, 0x02, 0x40, 0x01, 0x01), 32),
      /malformed/,
    );
  });
});
