// The server's view of its own trust bundle, read from the store and refreshed whenever an
// authority changes here, on every `bundles` commit notification (another server sharing the
// database published or rotated a key: PostgreSQL NOTIFY), and periodically as a fallback.
import type { Bundle } from '../../core/bundle.ts';
import { emptyBundle } from '../../core/bundle.ts';
import type { StoreAggregates } from '../../store/types.ts';

export class BundleCache {
  readonly #store: Pick<StoreAggregates, 'bundles'>;
  readonly #trustDomain: string;
  #bundle: Bundle;
  #roots: Uint8Array[] = [];
  readonly #listeners = new Set<(b: Bundle) => void>();
  /** Refreshes run one after another, so a slower, older read never replaces a newer one. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(store: Pick<StoreAggregates, 'bundles'>, trustDomain: string) {
    this.#store = store;
    this.#trustDomain = trustDomain;
    this.#bundle = emptyBundle(trustDomain);
  }

  get bundle(): Bundle {
    return this.#bundle;
  }

  /** X.509 authorities (DER) used to verify client SVIDs; tainted ones still verify until revoked. */
  get x509Roots(): readonly Uint8Array[] {
    return this.#roots;
  }

  onChange(fn: (b: Bundle) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  refresh(): Promise<Bundle> {
    const run = this.#queue.then(
      () => this.#read(),
      () => this.#read(),
    );
    this.#queue = run.catch(() => {});
    return run;
  }

  async #read(): Promise<Bundle> {
    const b = (await this.#store.bundles.get(this.#trustDomain)) ?? emptyBundle(this.#trustDomain);
    if (b.sequence !== this.#bundle.sequence || this.#roots.length === 0) {
      this.#bundle = b;
      this.#roots = b.x509Authorities.map((a) => a.der);
      for (const fn of this.#listeners) fn(b);
    }
    return b;
  }
}
