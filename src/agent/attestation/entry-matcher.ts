// Selectors → entries: an entry matches when all its selectors are among the caller's (SPIFFE
// subset matching). An index by selector is rebuilt when the synced entries change.
import type { Clock } from '../../core/clock.ts';
import { type Entry, isExpired } from '../../core/entry.ts';
import { type Selector, formatSelector } from '../../core/selector.ts';
import type { EntryMatcher } from './caller.ts';

/** The part of EntrySync the matcher reads. */
export interface EntrySource {
  readonly entries: ReadonlyMap<string, Entry>;
  onChange(listener: () => void): () => void;
}

export class SyncedEntryMatcher implements EntryMatcher {
  readonly #sync: EntrySource;
  readonly #clock: Clock;
  /** Selector → ids of the entries that have it; rebuilt when the entries change. */
  #bySelector: Map<string, string[]> | null = null;
  /** Entry id → arrival order, the tie-break between entries created in the same second. */
  #position = new Map<string, number>();
  #generation = 0;

  constructor(sync: EntrySource, clock: Clock) {
    this.#sync = sync;
    this.#clock = clock;
    sync.onChange(() => {
      this.#bySelector = null;
      this.#generation++;
    });
  }

  get generation(): number {
    return this.#generation;
  }

  /** Unexpired entries whose selectors are all among `selectors`, oldest first. */
  match(selectors: readonly Selector[]): Entry[] {
    const have = new Set(selectors.map(formatSelector));
    const index = this.#index();
    const now = this.#clock.now();
    const seen = new Set<string>();
    const out: Entry[] = [];
    for (const s of have) {
      for (const id of index.get(s) ?? []) {
        if (seen.has(id)) continue;
        seen.add(id);
        const e = this.#sync.entries.get(id);
        if (e && !isExpired(e, now) && e.selectors.every((x) => have.has(formatSelector(x))))
          out.push(e);
      }
    }
    const pos = (id: string) => this.#position.get(id) ?? 0;
    return out.sort((a, b) => a.createdAt - b.createdAt || pos(a.id) - pos(b.id));
  }

  #index(): Map<string, string[]> {
    if (!this.#bySelector) {
      const m = new Map<string, string[]>();
      this.#position = new Map();
      for (const e of this.#sync.entries.values()) {
        this.#position.set(e.id, this.#position.size);
        for (const s of e.selectors) {
          const k = formatSelector(s);
          const list = m.get(k);
          if (list) list.push(e.id);
          else m.set(k, [e.id]);
        }
      }
      this.#bySelector = m;
    }
    return this.#bySelector;
  }
}
