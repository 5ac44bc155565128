// Store port of the secret store (docs/access.md): secrets, their encrypted versions and the
// key-encryption-key records. Only ciphertext reaches it.

/** A secret of the secret store (docs/access.md): its name and which version is current. */
export interface SecretRecord {
  readonly name: string;
  readonly currentVersion: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/**
 * One version of a secret, envelope-encrypted (src/crypto/secrets/envelope.ts): only ciphertext,
 * its nonce and the wrapped data key are stored — never the value or the data key in the clear.
 */
export interface SecretVersionRecord {
  readonly name: string;
  readonly version: number;
  /** AES-256-GCM ciphertext with its tag. */
  readonly ciphertext: Uint8Array;
  readonly nonce: Uint8Array;
  /** The data key wrapped by KEK `kekId`. */
  readonly wrappedKey: Uint8Array;
  readonly kekId: string;
  /** Plaintext size in bytes. */
  readonly size: number;
  readonly createdAt: number;
}

/**
 * Where a key-encryption key stands. `pending`: recorded before its key exists and while data
 * keys are re-wrapped under it (checkValue "" until the key is durable); `active`: wraps new data
 * keys (at most one); `retired`: replaced, its key destroyed once no version refers to it.
 */
export type KekState = 'pending' | 'active' | 'retired';

export interface KekRecord {
  readonly id: string;
  readonly state: KekState;
  /**
   * The server that created it (its id): only that server may roll back its pending KEK; a
   * rotation in progress on another server is not touched.
   */
  readonly owner: string;
  /** The KEK manager's check value (verify() compares it); "" while pending and not yet made. */
  readonly checkValue: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** A version to add: its number must be the secret's current version + 1 (1 for a new secret). */
export type NewSecretVersion = SecretVersionRecord;

/**
 * Secrets, their versions and the KEK records. Every mutation announces the `access` topic.
 * Versions are added with the current pointer in one transaction, so a crash leaves a secret at
 * exactly its old or its new version.
 */
export interface SecretStore {
  get(name: string): Promise<SecretRecord | null>;
  /** Ordered by name. At most `limit` (1..100000). */
  list(limit: number): Promise<SecretRecord[]>;
  /** Ascending by version; [] when the secret does not exist. */
  versions(name: string): Promise<SecretVersionRecord[]>;
  /** The current version's row, or null when the secret does not exist. */
  current(name: string): Promise<SecretVersionRecord | null>;
  /**
   * Adds `v` and makes it current, atomically; keeps the newest `keep` versions and deletes older
   * ones. FailedPreconditionError (`conflict`) when the current version is no longer
   * v.version - 1 (a concurrent writer: re-read and retry) or when KEK v.kekId is not `active`
   * (a KEK rotation switched it: wrap again under the new one).
   */
  putVersion(v: NewSecretVersion, keep: number): Promise<SecretRecord>;
  /** Deletes the secret and all its versions. NotFoundError when missing. */
  delete(name: string): Promise<SecretRecord>;
  /** Versions whose data key is wrapped by KEK `kekId`, at most `limit`, by (name, version). */
  wrappedBy(kekId: string, limit: number): Promise<SecretVersionRecord[]>;
  /** How many versions have their data key wrapped by KEK `kekId`. */
  countWrappedBy(kekId: string): Promise<number>;
  /**
   * Replaces the wrapped data key of (name, version) if it is still wrapped by `fromKek`;
   * false when it is not (deleted, or re-wrapped already).
   */
  rewrap(
    name: string,
    version: number,
    fromKek: string,
    toKek: string,
    wrappedKey: Uint8Array,
  ): Promise<boolean>;
  /** Ordered by creation time, then id. */
  listKeks(): Promise<KekRecord[]>;
  /** AlreadyExistsError when the id exists or (state active) another KEK is active. */
  addKek(k: KekRecord): Promise<void>;
  /** Sets state and check value; NotFoundError when missing. */
  updateKek(id: string, state: KekState, checkValue: string, now: number): Promise<void>;
  /** Forgets the record; FailedPreconditionError while a version refers to it. */
  deleteKek(id: string): Promise<void>;
}
