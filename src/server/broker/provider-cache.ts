// Credential-provider instances, one per configured provider, built from the stored record
// through the catalog and kept while the record is unchanged: an OAuth provider's cached token
// or a database provider's connection pool outlives a single release. A record with another
// updatedAt (edited, or deleted and re-created) closes the old instance and builds a new one.
import type { CredentialProviderRecord } from '../../core/access.ts';
import { FailedPreconditionError, isTesseraError } from '../../core/errors.ts';
import type {
  CredentialProvider,
  CredentialProviderDeps,
} from '../../plugins/credential-providers/credential-provider.ts';

export type BuildProvider = (
  record: CredentialProviderRecord,
  deps: CredentialProviderDeps,
) => CredentialProvider;

interface Built {
  readonly updatedAt: number;
  readonly type: string;
  readonly provider: CredentialProvider;
}

export class ProviderCache {
  readonly #build: BuildProvider;
  readonly #deps: CredentialProviderDeps;
  readonly #onCloseError: (name: string, e: unknown) => void;
  readonly #built = new Map<string, Built>();

  constructor(
    build: BuildProvider,
    deps: CredentialProviderDeps,
    onCloseError: (name: string, e: unknown) => void = () => {},
  ) {
    this.#build = build;
    this.#deps = deps;
    this.#onCloseError = onCloseError;
  }

  get size(): number {
    return this.#built.size;
  }

  /** The instance for this record; FailedPreconditionError naming it when it cannot be built. */
  get(record: CredentialProviderRecord): CredentialProvider {
    const have = this.#built.get(record.name);
    if (have && have.updatedAt === record.updatedAt && have.type === record.type) {
      return have.provider;
    }
    if (have) this.#close(record.name, have);
    let provider: CredentialProvider;
    try {
      provider = this.#build(record, this.#deps);
    } catch (e) {
      // The config was validated when it was stored; failing now means the catalog changed.
      const why = isTesseraError(e) ? e.message : 'its configuration is not valid';
      throw new FailedPreconditionError(
        `credential provider "${record.name}" (${record.type}) cannot be built: ${why}`,
        { cause: e },
      );
    }
    this.#built.set(record.name, { updatedAt: record.updatedAt, type: record.type, provider });
    return provider;
  }

  /** Closes and forgets the instance of a provider that no longer exists. */
  drop(name: string): void {
    const have = this.#built.get(name);
    if (have) this.#close(name, have);
  }

  async closeAll(): Promise<void> {
    const all = [...this.#built.entries()];
    this.#built.clear();
    await Promise.allSettled(
      all.map(async ([name, b]) => {
        try {
          await b.provider.close?.();
        } catch (e) {
          this.#onCloseError(name, e);
        }
      }),
    );
  }

  #close(name: string, b: Built): void {
    this.#built.delete(name);
    // Releases in flight on the old instance finish on it; close only stops what it holds.
    b.provider.close?.().catch((e: unknown) => this.#onCloseError(name, e));
  }
}
