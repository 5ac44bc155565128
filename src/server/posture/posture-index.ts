// The stored posture reports in memory, by subject, so that entry conditions and access
// decisions read posture synchronously. Re-read when the `access` topic fires (an import on this
// server or, through PostgreSQL, on another) and by a periodic poll as the fallback; the
// revision is the last import version, sent to agents as sync.proto posture_revision.
import { type Coalesced, coalesce } from '../../core/coalesce.ts';
import type { PostureReport } from '../../core/posture.ts';
import type { CommitNotifications, PostureStore } from '../../store/types.ts';

export class PostureIndex {
  readonly #store: Pick<PostureStore, 'list' | 'revision'>;
  readonly #listeners = new Set<(revision: number) => void>();
  readonly #refresh: Coalesced;
  #reports = new Map<string, PostureReport>();
  #revision = -1;
  #unsubscribe: () => void = () => {};

  private constructor(store: Pick<PostureStore, 'list' | 'revision'>) {
    this.#store = store;
    this.#refresh = coalesce(() => this.#read());
  }

  static async start(
    store: { posture: Pick<PostureStore, 'list' | 'revision'>; notifications: CommitNotifications },
    onError: (e: unknown) => void,
  ): Promise<PostureIndex> {
    const index = new PostureIndex(store.posture);
    await index.refresh();
    index.#unsubscribe = store.notifications.subscribe('access', () => {
      index.refresh().catch(onError);
    });
    return index;
  }

  /** An index over fixed reports (tests, what-if). */
  static of(reports: readonly PostureReport[], revision = 1): PostureIndex {
    const index = new PostureIndex({ list: async () => [...reports], revision: async () => 0 });
    index.#reports = new Map(reports.map((r) => [r.subject, r]));
    index.#revision = revision;
    return index;
  }

  get current(): number {
    return Math.max(0, this.#revision);
  }

  /** The report for a subject ("sha256:<hex>"), if any. */
  report(subject: string): PostureReport | undefined {
    return this.#reports.get(subject);
  }

  refresh(): Promise<void> {
    return this.#refresh();
  }

  onChange(fn: (revision: number) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  stop(): void {
    this.#unsubscribe();
  }

  async #read(): Promise<void> {
    const revision = await this.#store.revision();
    if (revision === this.#revision) return;
    const reports = await this.#store.list();
    this.#reports = new Map(reports.map((r) => [r.subject, r]));
    this.#revision = revision;
    for (const fn of this.#listeners) {
      try {
        fn(revision);
      } catch {
        // A listener's failure is its own.
      }
    }
  }
}
