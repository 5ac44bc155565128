// ECDSA signature re-encoding between DER (X.509) and IEEE P1363 r||s (JWS). Done here rather
// than with node's dsaEncoding: 'ieee-p1363', which measured ~2× slower per signature on OpenSSL 3
// (it converts the provider key to a legacy EC_KEY to learn the field size).
import { InvalidArgumentError } from '../core/errors.ts';

/** DER Ecdsa-Sig-Value → r||s, each left-padded to `size` bytes (32 for P-256, 48 for P-384). */
export function ecdsaDerToP1363(der: Uint8Array, size: number): Uint8Array {
  const bad = (): never => {
    throw new InvalidArgumentError('malformed ECDSA signature');
  };
  if (der[0] !== 0x30) bad();
  let p = 2;
  if ((der[1] as number) & 0x80) p = 2 + ((der[1] as number) & 0x7f);
  const out = new Uint8Array(2 * size);
  for (let i = 0; i < 2; i++) {
    if (der[p] !== 0x02) bad();
    const len = der[p + 1] as number;
    let start = p + 2;
    let n = len;
    while (n > 0 && der[start] === 0) {
      start++;
      n--;
    }
    if (n > size || start + n > der.length) bad();
    out.set(der.subarray(start, start + n), (i + 1) * size - n);
    p = p + 2 + len;
  }
  return out;
}

/** r||s → DER Ecdsa-Sig-Value. */
export function ecdsaP1363ToDer(sig: Uint8Array): Uint8Array {
  const half = sig.length / 2;
  const int = (b: Uint8Array): number[] => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = [...b.subarray(i)];
    if ((v[0] as number) & 0x80) v.unshift(0);
    return [0x02, v.length, ...v];
  };
  const body = [...int(sig.subarray(0, half)), ...int(sig.subarray(half))];
  const len = body.length < 0x80 ? [body.length] : [0x81, body.length];
  return Uint8Array.from([0x30, ...len, ...body]);
}
