// TPM2B_PUBLIC (TPM 2.0 Part 2 §12.2.5): just enough of it to check an endorsement key and an
// attestation key from an untrusted agent: type, name algorithm, attributes, the RSA parameters
// and the key itself, and the object's Name (nameAlg || H(TPMT_PUBLIC)). Every read is bounds
// checked; anything unexpected is a PermissionDeniedError naming the field.
import { type KeyObject, createHash, createPublicKey } from 'node:crypto';
import { PermissionDeniedError } from '../../../core/errors.ts';

export const TPM_ALG = {
  RSA: 0x0001,
  SHA256: 0x000b,
  AES: 0x0006,
  NULL: 0x0010,
  CFB: 0x0043,
  ECC: 0x0023,
  RSASSA: 0x0014,
  RSAPSS: 0x0016,
} as const;

/** TPMA_OBJECT bits. */
export const TPMA = {
  fixedTPM: 1 << 1,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
} as const;

export interface TpmPublic {
  readonly type: number;
  readonly nameAlg: number;
  readonly attributes: number;
  /** RSA: the symmetric algorithm of a storage key (AES) or NULL, its key bits and mode. */
  readonly symmetric: { alg: number; keyBits: number; mode: number };
  readonly keyBits: number;
  /** The public key (RSA only; an ECC key is refused by the callers that need one). */
  readonly key: KeyObject | null;
  /** nameAlg (2 bytes) || SHA-256(TPMT_PUBLIC). */
  readonly name: Buffer;
}

const MAX_PUBLIC_BYTES = 1024;

class Reader {
  #p = 0;
  readonly buf: Buffer;
  readonly what: string;
  constructor(buf: Buffer, what: string) {
    this.buf = buf;
    this.what = what;
  }
  #need(n: number): void {
    if (this.#p + n > this.buf.length)
      throw new PermissionDeniedError(`tpm: ${this.what} is truncated`);
  }
  u16(): number {
    this.#need(2);
    const v = this.buf.readUInt16BE(this.#p);
    this.#p += 2;
    return v;
  }
  u32(): number {
    this.#need(4);
    const v = this.buf.readUInt32BE(this.#p);
    this.#p += 4;
    return v;
  }
  sized(): Buffer {
    const n = this.u16();
    this.#need(n);
    const v = this.buf.subarray(this.#p, this.#p + n);
    this.#p += n;
    return v;
  }
  get done(): boolean {
    return this.#p === this.buf.length;
  }
}

/** Parses a TPM2B_PUBLIC as tpm2-tools writes it (`-u file`, format tss). */
export function parseTpm2bPublic(bytes: Uint8Array, what: string): TpmPublic {
  const buf = Buffer.from(bytes);
  if (buf.length < 2 || buf.length > MAX_PUBLIC_BYTES)
    throw new PermissionDeniedError(`tpm: ${what} must be 2..${MAX_PUBLIC_BYTES} bytes`);
  const outer = new Reader(buf, what);
  const tpmt = outer.sized();
  if (!outer.done) throw new PermissionDeniedError(`tpm: ${what} has trailing bytes`);
  const r = new Reader(tpmt, what);
  const type = r.u16();
  const nameAlg = r.u16();
  const attributes = r.u32();
  r.sized(); // authPolicy
  if (nameAlg !== TPM_ALG.SHA256)
    throw new PermissionDeniedError(`tpm: ${what} name algorithm must be SHA-256`);
  let symmetric: TpmPublic['symmetric'] = { alg: TPM_ALG.NULL, keyBits: 0, mode: TPM_ALG.NULL };
  const symAlg = r.u16();
  if (symAlg !== TPM_ALG.NULL) symmetric = { alg: symAlg, keyBits: r.u16(), mode: r.u16() };
  let key: KeyObject | null = null;
  let keyBits = 0;
  if (type === TPM_ALG.RSA) {
    const scheme = r.u16();
    if (scheme !== TPM_ALG.NULL) r.u16(); // the scheme's hash
    keyBits = r.u16();
    const exponent = r.u32() || 65537;
    const modulus = r.sized();
    if (keyBits < 2048 || modulus.length * 8 !== keyBits)
      throw new PermissionDeniedError(`tpm: ${what} must be an RSA key of at least 2048 bits`);
    const e = Buffer.alloc(4);
    e.writeUInt32BE(exponent);
    try {
      key = createPublicKey({
        key: {
          kty: 'RSA',
          n: modulus.toString('base64url'),
          e: e.subarray(e.findIndex((b) => b !== 0)).toString('base64url'),
        },
        format: 'jwk',
      });
    } catch {
      throw new PermissionDeniedError(`tpm: ${what} holds no valid RSA key`);
    }
  } else if (type !== TPM_ALG.ECC) {
    throw new PermissionDeniedError(`tpm: ${what} must be an RSA or ECC key`);
  }
  const name = Buffer.concat([
    Buffer.from([nameAlg >> 8, nameAlg & 0xff]),
    createHash('sha256').update(tpmt).digest(),
  ]);
  return { type, nameAlg, attributes, symmetric, keyBits, key, name };
}

const has = (p: TpmPublic, bits: number) => (p.attributes & bits) === bits;

/** The endorsement key: an RSA storage key of the standard template (restricted decrypt, AES-CFB). */
export function checkEndorsementKey(ek: TpmPublic): KeyObject {
  if (ek.type !== TPM_ALG.RSA || !ek.key)
    throw new PermissionDeniedError('tpm: only RSA endorsement keys are supported');
  if (!has(ek, TPMA.fixedTPM | TPMA.fixedParent | TPMA.restricted | TPMA.decrypt))
    throw new PermissionDeniedError('tpm: the endorsement key is not a restricted decryption key');
  const s = ek.symmetric;
  if (s.alg !== TPM_ALG.AES || s.mode !== TPM_ALG.CFB || ![128, 256].includes(s.keyBits))
    throw new PermissionDeniedError('tpm: the endorsement key must protect with AES-CFB');
  return ek.key;
}

/** The attestation key: created in the TPM, never leaving it, a restricted signing key. */
export function checkAttestationKey(ak: TpmPublic): void {
  const want =
    TPMA.fixedTPM | TPMA.fixedParent | TPMA.sensitiveDataOrigin | TPMA.restricted | TPMA.sign;
  if (!has(ak, want) || has(ak, TPMA.decrypt))
    throw new PermissionDeniedError(
      'tpm: the attestation key must be a restricted signing key fixed to the TPM',
    );
}
