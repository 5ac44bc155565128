// A key-encryption key (KEK) manager holds the keys that wrap the secret store's data keys
// (docs/access.md, "Secret store"). One folder per type, listed in catalog.ts: `disk` keeps each
// KEK in a file; a KMS or PKCS#11 manager would keep it in the device and wrap there, so the
// interface never hands out key material — only wrap and unwrap by KEK id.
//
// Which KEK is current, and which are being rotated in or retired, is recorded in the datastore
// (SecretStore KEK records), not here: a manager only creates, checks, uses and destroys keys.
import { InvalidArgumentError } from '../../core/errors.ts';

/** KEK ids: 16 lowercase hex characters, chosen by the caller at random. */
export const KEK_ID_PATTERN = /^[0-9a-f]{16}$/;

export function assertKekId(id: string): string {
  if (!KEK_ID_PATTERN.test(id)) throw new InvalidArgumentError(`invalid KEK id "${id}"`);
  return id;
}

export interface KekManager {
  readonly type: string;
  /**
   * Creates KEK `id` and makes it durable before resolving; returns its check value (stored in
   * the KEK record, compared by verify()).
   */
  create(id: string): Promise<string>;
  /**
   * Checks that KEK `id` is present and is the key whose check value is `checkValue`.
   * FailedPreconditionError naming where it looked (a file) and what to do.
   */
  verify(id: string, checkValue: string): Promise<void>;
  wrap(id: string, dataKey: Uint8Array, aad: Uint8Array): Promise<Uint8Array>;
  unwrap(id: string, wrapped: Uint8Array, aad: Uint8Array): Promise<Uint8Array>;
  /**
   * Destroys KEK `id`. Called only for ids whose datastore record proves this server created
   * them and that nothing refers to them any more. A missing key is not an error.
   */
  destroy(id: string): Promise<void>;
  /** Where KEK `id` lives, for messages (e.g. `/data/secrets/kek-<id>.key`). */
  locate(id: string): string;
}
