// The key-manager contract. Local managers (memory, disk) hold KeyObjects and also sign
// synchronously (the SVID hot path); KMS-backed managers added later as plugins implement only
// the async `sign`, and callers fall back to it when `signSync` is absent.
import type { KeyObject } from 'node:crypto';
import type { KeyType } from '../core/authority.ts';

/** ECDSA signature encoding: DER (X.509, CSR) or IEEE P1363 r||s (JWS). Ignored for RSA. */
export type SignatureFormat = 'der' | 'ieee-p1363';

export interface ManagedKey {
  readonly ref: string;
  readonly type: KeyType;
  readonly publicKey: KeyObject;
  /** SubjectPublicKeyInfo DER. */
  readonly publicKeyDer: Uint8Array;
  /** Signs with the hash of the key type (P-256 and RSA → SHA-256, P-384 → SHA-384). */
  sign(data: Uint8Array, format: SignatureFormat): Promise<Uint8Array>;
  /** Present for keys held in process memory. */
  signSync?(data: Uint8Array, format: SignatureFormat): Uint8Array;
}

export interface KeyManager {
  /** Creates a key under `ref`, replacing any existing key with that ref (as SPIRE does). */
  generate(ref: string, type: KeyType): Promise<ManagedKey>;
  get(ref: string): Promise<ManagedKey | null>;
  /** Deleting a missing ref is not an error. */
  delete(ref: string): Promise<void>;
  list(): Promise<string[]>;
  /** Where the key of `ref` lives, for messages that tell an operator what to restore. */
  locate(ref: string): string;
}
