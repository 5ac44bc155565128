// The access revision as this server's sync streams send it (sync.proto access_revision): the
// datastore's counter (store/types.ts AccessRevisionStore), re-read when the `access` topic fires
// — a write or revocation on this server, or on another sharing PostgreSQL — and by a periodic
// poll as the fallback for a missed notification. Reads are coalesced, so a burst of commits
// costs one read in progress plus one more, and listeners hear each new value once.
import { type Coalesced, coalesce } from '../../core/coalesce.ts';
import type { AccessRevisionStore, CommitNotifications } from '../../store/types.ts';

export class AccessRevisionFeed {
  readonly #store: Pick<AccessRevisionStore, 'current'>;
  readonly #listeners = new Set<(revision: number) => void>();
  readonly #refresh: Coalesced;
  #current: number;
  #unsubscribe: () => void = () => {};

  private constructor(store: Pick<AccessRevisionStore, 'current'>, current: number) {
    this.#store = store;
    this.#current = current;
    this.#refresh = coalesce(() => this.#read());
  }

  /** Reads the current value, then follows `access` commits until stop(). */
  static async start(
    store: {
      accessRevision: Pick<AccessRevisionStore, 'current'>;
      notifications: CommitNotifications;
    },
    onError: (e: unknown) => void,
  ): Promise<AccessRevisionFeed> {
    const feed = new AccessRevisionFeed(store.accessRevision, await store.accessRevision.current());
    feed.#unsubscribe = store.notifications.subscribe('access', () => {
      feed.refresh().catch(onError);
    });
    return feed;
  }

  get current(): number {
    return this.#current;
  }

  /** Re-reads the counter (coalesced); resolves once a read started after the call is done. */
  refresh(): Promise<void> {
    return this.#refresh();
  }

  /** Called with each new value. Returns unsubscribe. */
  onChange(fn: (revision: number) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  stop(): void {
    this.#unsubscribe();
  }

  async #read(): Promise<void> {
    const value = await this.#store.current();
    if (value === this.#current) return;
    this.#current = value;
    for (const fn of this.#listeners) {
      try {
        fn(value);
      } catch {
        // A listener's failure is its own; the others still hear the change.
      }
    }
  }
}
