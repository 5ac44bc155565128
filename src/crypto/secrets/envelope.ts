// Envelope encryption of secret values (docs/access.md, "Secret store"): each secret version is
// sealed with AES-256-GCM under its own random 256-bit data key; the data key is wrapped by a
// key-encryption key (KEK), also with AES-256-GCM. Pure functions over node:crypto.
//
// Binding: the value's AAD names the secret and version, and the wrapped key's AAD additionally
// names the KEK id, so a row copied to another name, version or KEK record fails to decrypt
// instead of yielding someone else's secret.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { TesseraError } from '../../core/errors.ts';

export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const ALG = 'aes-256-gcm';

/** Decryption failed: wrong key, wrong binding or tampered bytes. Never says which. */
export class DecryptionError extends TesseraError {
  constructor(message: string) {
    super('internal', message);
    this.name = 'DecryptionError';
  }
}

/** Where a secret version lives: its AAD. */
export interface SecretBinding {
  readonly name: string;
  readonly version: number;
}

export interface SealedValue {
  /** Ciphertext followed by the 16-byte GCM tag. */
  readonly ciphertext: Uint8Array;
  readonly nonce: Uint8Array;
  /** The plaintext data key: wrap it at once and drop it. */
  readonly dataKey: Uint8Array;
}

function checkBinding(b: SecretBinding): void {
  if (!Number.isInteger(b.version) || b.version < 1) {
    throw new TypeError(`secret version must be a positive integer, got ${b.version}`);
  }
  if (b.name.length === 0 || b.name.includes('\0')) throw new TypeError('bad secret name');
}

/** AAD of a value: `tessera-secret-v1 \0 name \0 version`. */
export function valueAad(b: SecretBinding): Buffer {
  checkBinding(b);
  return Buffer.from(`tessera-secret-v1\0${b.name}\0${b.version}`, 'utf8');
}

/** AAD of a wrapped data key: also names the KEK. */
export function dataKeyAad(b: SecretBinding, kekId: string): Buffer {
  checkBinding(b);
  if (kekId.length === 0 || kekId.includes('\0')) throw new TypeError('bad KEK id');
  return Buffer.from(`tessera-dek-v1\0${kekId}\0${b.name}\0${b.version}`, 'utf8');
}

function seal(key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, nonce: Uint8Array) {
  if (key.length !== KEY_BYTES) throw new TypeError(`key must be ${KEY_BYTES} bytes`);
  const c = createCipheriv(ALG, key, nonce, { authTagLength: TAG_BYTES });
  c.setAAD(aad);
  return new Uint8Array(Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]));
}

function open(
  key: Uint8Array,
  sealed: Uint8Array,
  aad: Uint8Array,
  nonce: Uint8Array,
  what: string,
): Uint8Array {
  if (key.length !== KEY_BYTES) throw new TypeError(`key must be ${KEY_BYTES} bytes`);
  if (nonce.length !== NONCE_BYTES || sealed.length < TAG_BYTES) {
    throw new DecryptionError(`${what}: malformed`);
  }
  const body = sealed.subarray(0, sealed.length - TAG_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  try {
    const d = createDecipheriv(ALG, key, nonce, { authTagLength: TAG_BYTES });
    d.setAAD(aad);
    d.setAuthTag(tag);
    return new Uint8Array(Buffer.concat([d.update(body), d.final()]));
  } catch {
    throw new DecryptionError(`${what}: authentication failed`);
  }
}

/** Seals `plaintext` for (name, version) under a fresh data key and nonce. */
export function sealValue(plaintext: Uint8Array, b: SecretBinding): SealedValue {
  const dataKey = new Uint8Array(randomBytes(KEY_BYTES));
  const nonce = new Uint8Array(randomBytes(NONCE_BYTES));
  return { ciphertext: seal(dataKey, plaintext, valueAad(b), nonce), nonce, dataKey };
}

export function openValue(
  sealed: { ciphertext: Uint8Array; nonce: Uint8Array },
  dataKey: Uint8Array,
  b: SecretBinding,
): Uint8Array {
  return open(dataKey, sealed.ciphertext, valueAad(b), sealed.nonce, 'secret value');
}

/** nonce ‖ ciphertext ‖ tag of the data key under the KEK. */
export function wrapKey(kek: Uint8Array, dataKey: Uint8Array, aad: Uint8Array): Uint8Array {
  if (dataKey.length !== KEY_BYTES) throw new TypeError(`data key must be ${KEY_BYTES} bytes`);
  const nonce = randomBytes(NONCE_BYTES);
  return new Uint8Array(Buffer.concat([nonce, seal(kek, dataKey, aad, nonce)]));
}

export function unwrapKey(kek: Uint8Array, wrapped: Uint8Array, aad: Uint8Array): Uint8Array {
  const nonce = wrapped.subarray(0, NONCE_BYTES);
  const key = open(kek, wrapped.subarray(NONCE_BYTES), aad, nonce, 'wrapped data key');
  if (key.length !== KEY_BYTES) throw new DecryptionError('wrapped data key: malformed');
  return key;
}

/**
 * A check value of a KEK, stored with its record so a start-up can tell a wrong key file from the
 * right one: HMAC-SHA256 of a fixed label, hex. Reveals nothing usable about the key.
 */
export function kekCheckValue(kek: Uint8Array): string {
  return createHmac('sha256', kek).update('tessera-kek-check-v1').digest('hex');
}
