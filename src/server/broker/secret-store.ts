// The secret store at work (docs/access.md, "Secret store"): values are sealed with envelope
// encryption (src/crypto/secrets/envelope.ts) before they reach the datastore, and opened only for
// SecretReader.read — by the broker, inside a credential released by an access decision. The
// admin operations (put, rotate, delete, KEK rotation) are audited with name, version and size;
// never the value, nor anything derived from it.
import type { Clock } from '../../core/clock.ts';
import { NAME_PATTERN } from '../../core/access.ts';
import {
  ConflictError,
  InvalidArgumentError,
  NotFoundError,
  ResourceExhaustedError,
} from '../../core/errors.ts';
import { dataKeyAad, openValue, sealValue } from '../../crypto/secrets/envelope.ts';
import type { KekManager } from '../../plugins/kek-managers/catalog.ts';
import type { SecretReader } from '../../plugins/credential-providers/credential-provider.ts';
import type { SecretRecord, SecretVersionRecord, Store } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../../core/caller.ts';
import { KekKeeper, type KekRotationResult } from './secret-keks.ts';

/** Largest secret value, in bytes (64 KiB). */
export const MAX_SECRET_BYTES = 64 * 1024;
/** Versions kept per secret: older ones are deleted when a new one is added. */
export const KEEP_VERSIONS = 10;
export const MAX_SECRETS = 10_000;
/** Retries of a write that lost a race (a concurrent writer, a KEK switch). */
const WRITE_ATTEMPTS = 5;

/** A version as the admin API shows it: never the value, the ciphertext or a key. */
export interface SecretVersionInfo {
  readonly version: number;
  readonly createdAt: number;
  readonly kekId: string;
  readonly size: number;
}

export interface SecretInfo extends SecretRecord {
  /** Ascending; [] in lists (show one secret for its versions). */
  readonly versions: readonly SecretVersionInfo[];
}

export interface SecretStoreServiceOptions {
  readonly store: Store;
  readonly kek: KekManager;
  readonly auditor: Auditor;
  readonly clock: Clock;
  /** This server's id (owner of the KEKs it creates). */
  readonly serverId: string;
  /** Test hook: called after each data key re-wrapped by a KEK rotation. */
  readonly onRewrap?: () => void;
}

export function checkSecretName(name: string): string {
  if (!NAME_PATTERN.test(name)) {
    throw new InvalidArgumentError(
      `secret name "${name.slice(0, 80)}": use 1-63 lowercase letters, digits, ".", "_" or "-", starting and ending with a letter or digit`,
    );
  }
  return name;
}

function checkValue(value: Uint8Array): void {
  if (value.length === 0) throw new InvalidArgumentError('secret value: empty');
  if (value.length > MAX_SECRET_BYTES) {
    throw new InvalidArgumentError(
      `secret value: ${value.length} bytes, larger than the limit of ${MAX_SECRET_BYTES} bytes (64 KiB)`,
    );
  }
}

const versionInfo = (v: SecretVersionRecord): SecretVersionInfo => ({
  version: v.version,
  createdAt: v.createdAt,
  kekId: v.kekId,
  size: v.size,
});

export class SecretStoreService implements SecretReader {
  readonly #o: SecretStoreServiceOptions;
  readonly #keks: KekKeeper;

  private constructor(o: SecretStoreServiceOptions, keks: KekKeeper) {
    this.#o = o;
    this.#keks = keks;
  }

  /**
   * Checks the KEKs the datastore needs (FailedPreconditionError naming a missing or wrong KEK
   * file: the server must not start) and finishes or rolls back an interrupted KEK rotation. The
   * first KEK is made with the first secret.
   */
  static async create(o: SecretStoreServiceOptions): Promise<SecretStoreService> {
    const keks = await KekKeeper.start(o);
    return new SecretStoreService(o, keks);
  }

  /** The current version's plaintext; NotFoundError naming the secret. */
  async read(name: string): Promise<Uint8Array> {
    const { store, kek } = this.#o;
    for (let attempt = 1; ; attempt++) {
      const v = await store.secrets.current(name);
      if (!v) throw new NotFoundError(`secret "${name}" not found`);
      try {
        const dataKey = await kek.unwrap(v.kekId, v.wrappedKey, dataKeyAad(v, v.kekId));
        try {
          return openValue(v, dataKey, v);
        } finally {
          dataKey.fill(0);
        }
      } catch (e) {
        // A KEK rotation may have re-wrapped the row and destroyed the old KEK since it was read.
        if (attempt >= 3) throw e;
      }
    }
  }

  async exists(name: string): Promise<boolean> {
    return (await this.#o.store.secrets.get(name)) !== null;
  }

  /** Creates the secret, or adds a new version when it exists. */
  async put(ctx: RequestContext, name: string, value: Uint8Array): Promise<SecretInfo> {
    checkSecretName(name);
    checkValue(value);
    return await this.#write(ctx, 'secret.put', name, value, true);
  }

  /** A new version: `value`, or (undefined) the current value under a fresh data key. */
  async rotate(ctx: RequestContext, name: string, value?: Uint8Array): Promise<SecretInfo> {
    checkSecretName(name);
    if (value !== undefined) checkValue(value);
    if (!(await this.exists(name))) throw new NotFoundError(`secret "${name}" not found`);
    const next = value ?? (await this.read(name));
    try {
      return await this.#write(ctx, 'secret.rotate', name, next, false);
    } finally {
      if (value === undefined) next.fill(0);
    }
  }

  async delete(ctx: RequestContext, name: string): Promise<SecretInfo> {
    checkSecretName(name);
    return this.#o.store.transaction(async (tx) => {
      const gone = await tx.secrets.delete(name);
      await this.#o.auditor.record(tx, ctx, {
        action: 'secret.delete',
        target: name,
        outcome: 'success',
        details: { currentVersion: gone.currentVersion },
      });
      return { ...gone, versions: [] };
    });
  }

  /** Metadata and versions; never a value. */
  async get(name: string): Promise<SecretInfo> {
    checkSecretName(name);
    const s = await this.#o.store.secrets.get(name);
    if (!s) throw new NotFoundError(`secret "${name}" not found`);
    const versions = await this.#o.store.secrets.versions(name);
    return { ...s, versions: versions.map(versionInfo) };
  }

  async list(): Promise<SecretInfo[]> {
    return (await this.#o.store.secrets.list(MAX_SECRETS)).map((s) => ({ ...s, versions: [] }));
  }

  rotateKek(ctx: RequestContext): Promise<KekRotationResult> {
    return this.#keks.rotate(ctx);
  }

  async #write(
    ctx: RequestContext,
    action: 'secret.put' | 'secret.rotate',
    name: string,
    value: Uint8Array,
    mayCreate: boolean,
  ): Promise<SecretInfo> {
    const { store, kek, auditor, clock } = this.#o;
    for (let attempt = 1; ; attempt++) {
      const cur = await store.secrets.get(name);
      if (!cur && !mayCreate) throw new NotFoundError(`secret "${name}" not found`);
      if (!cur && (await store.secrets.list(MAX_SECRETS)).length >= MAX_SECRETS) {
        throw new ResourceExhaustedError(`the secret store holds at most ${MAX_SECRETS} secrets`);
      }
      const version = (cur?.currentVersion ?? 0) + 1;
      const kekId = await this.#keks.activeId();
      const sealed = sealValue(value, { name, version });
      const wrappedKey = await kek.wrap(
        kekId,
        sealed.dataKey,
        dataKeyAad({ name, version }, kekId),
      );
      sealed.dataKey.fill(0);
      const row: SecretVersionRecord = {
        name,
        version,
        ciphertext: sealed.ciphertext,
        nonce: sealed.nonce,
        wrappedKey,
        kekId,
        size: value.length,
        createdAt: clock.now(),
      };
      try {
        const rec = await store.transaction(async (tx) => {
          const r = await tx.secrets.putVersion(row, KEEP_VERSIONS);
          await auditor.record(tx, ctx, {
            action,
            target: name,
            outcome: 'success',
            details: { version, size: value.length, kekId, created: version === 1 },
          });
          return r;
        });
        return { ...rec, versions: [versionInfo(row)] };
      } catch (e) {
        if (!(e instanceof ConflictError) || attempt >= WRITE_ATTEMPTS) throw e;
      }
    }
  }
}
