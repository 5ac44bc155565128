// The server's view of the federated bundles: every bundle in the store whose trust domain is not
// the server's own. Read from the store periodically (another server sharing the database may
// store or delete one) and on refresh(), which whoever stores a federated bundle here calls right
// after (the bundle fetcher, the admin API). Listeners hear which trust domains changed.
import { type Bundle, bundleEquals } from '../../core/bundle.ts';
import type { StoreAggregates } from '../../store/types.ts';

/** What one refresh changed: trust domains whose bundle is new or different, and deleted ones. */
export interface FederatedBundleChange {
  readonly changed: readonly string[];
  readonly removed: readonly string[];
}

export class FederatedBundleCache {
  readonly #store: Pick<StoreAggregates, 'bundles'>;
  readonly #trustDomain: string;
  #bundles: ReadonlyMap<string, Bundle> = new Map();
  readonly #listeners = new Set<(c: FederatedBundleChange) => void>();
  /** The refresh in flight: concurrent callers share it, and one more runs after it if asked. */
  #running: Promise<FederatedBundleChange> | null = null;
  #again: Promise<FederatedBundleChange> | null = null;

  constructor(store: Pick<StoreAggregates, 'bundles'>, ownTrustDomain: string) {
    this.#store = store;
    this.#trustDomain = ownTrustDomain;
  }

  /** Trust domain name → bundle. The map and its bundles are replaced, never mutated. */
  get bundles(): ReadonlyMap<string, Bundle> {
    return this.#bundles;
  }

  get(trustDomain: string): Bundle | undefined {
    return this.#bundles.get(trustDomain);
  }

  onChange(fn: (c: FederatedBundleChange) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * Re-reads the federated bundles and notifies the listeners when any was added, changed (by
   * sequence or content) or deleted. A call made while a refresh runs starts another one after
   * it, so a bundle stored just before the call is always seen by the time it resolves.
   */
  refresh(): Promise<FederatedBundleChange> {
    if (!this.#running) {
      this.#running = this.#load().finally(() => (this.#running = null));
      return this.#running;
    }
    this.#again ??= this.#running
      .catch(() => undefined)
      .then(() => {
        this.#again = null;
        return this.refresh();
      });
    return this.#again;
  }

  async #load(): Promise<FederatedBundleChange> {
    const all = await this.#store.bundles.list();
    const next = new Map<string, Bundle>();
    const changed: string[] = [];
    for (const b of all) {
      if (b.trustDomain === this.#trustDomain) continue;
      const prev = this.#bundles.get(b.trustDomain);
      if (prev && prev.sequence === b.sequence && bundleEquals(prev, b)) {
        next.set(b.trustDomain, prev);
      } else {
        next.set(b.trustDomain, b);
        changed.push(b.trustDomain);
      }
    }
    const removed = [...this.#bundles.keys()].filter((td) => !next.has(td));
    this.#bundles = next;
    const change = { changed, removed };
    if (changed.length > 0 || removed.length > 0) for (const fn of this.#listeners) fn(change);
    return change;
  }
}
