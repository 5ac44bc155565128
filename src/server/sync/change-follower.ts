// Follows the store's change feed and applies entry changes to the EntryIndex (node changes are
// passed on to its node listeners: open agent streams re-check their agent).
//
// Event ids increase but are not contiguous: on PostgreSQL a transaction that took id 11 may
// commit after one that took id 12. So a skipped id is remembered as a gap and looked up again
// on later polls until it appears or ages out (a rolled-back transaction never fills its gap).
// Applying an event re-reads the entry's current state, so order and repeats do not matter.
import type { Clock } from '../../core/clock.ts';
import type { ChangeEvent, StoreAggregates } from '../../store/types.ts';
import type { EntryIndex } from '../registration/entry-index.ts';

export const GAP_TTL_MS = 60_000;
/**
 * Change events are pruned after an hour (compose/server.ts). A follower that could not poll for a
 * good part of that (datastore outage, a stalled process) may have missed pruned events, so it
 * reloads every entry instead of trusting the feed.
 */
export const RELOAD_AFTER_MS = 20 * 60_000;
const BATCH = 1000;

export class ChangeFollower {
  readonly #store: Pick<StoreAggregates, 'changes' | 'entries'>;
  readonly #index: EntryIndex;
  readonly #clock: Clock;
  #cursor: number;
  readonly #gaps = new Map<number, number>();
  #lastPoll: number;

  private constructor(
    store: Pick<StoreAggregates, 'changes' | 'entries'>,
    index: EntryIndex,
    clock: Clock,
    cursor: number,
  ) {
    this.#store = store;
    this.#index = index;
    this.#clock = clock;
    this.#cursor = cursor;
    this.#lastPoll = clock.now();
  }

  /** Loads every entry, then follows changes from the feed position taken before the load. */
  static async start(
    store: Pick<StoreAggregates, 'changes' | 'entries'>,
    index: EntryIndex,
    clock: Clock,
  ): Promise<ChangeFollower> {
    const cursor = await loadAll(store, index);
    return new ChangeFollower(store, index, clock, cursor);
  }

  get cursor(): number {
    return this.#cursor;
  }

  /** One poll: applies new events and any gap that has since been filled. */
  async poll(): Promise<number> {
    const now = this.#clock.now();
    if (now - this.#lastPoll > RELOAD_AFTER_MS) {
      this.#cursor = await loadAll(this.#store, this.#index);
      this.#gaps.clear();
      this.#lastPoll = now;
      return this.#index.size;
    }
    const events: ChangeEvent[] = [];
    if (this.#gaps.size > 0) {
      for (const [id, seenAt] of this.#gaps) if (now - seenAt > GAP_TTL_MS) this.#gaps.delete(id);
      const filled = await this.#store.changes.byIds([...this.#gaps.keys()]);
      for (const e of filled) this.#gaps.delete(e.id);
      events.push(...filled);
    }
    for (;;) {
      const batch = await this.#store.changes.since(this.#cursor, BATCH);
      for (const e of batch) {
        for (
          let missing = this.#cursor + 1;
          missing < e.id && this.#gaps.size < 10_000;
          missing++
        ) {
          this.#gaps.set(missing, now);
        }
        this.#cursor = Math.max(this.#cursor, e.id);
      }
      events.push(...batch);
      if (batch.length < BATCH) break;
    }
    await this.#apply(events);
    this.#lastPoll = now;
    return events.length;
  }

  async #apply(events: readonly ChangeEvent[]): Promise<void> {
    const ids = [...new Set(events.filter((e) => e.kind === 'entry').map((e) => e.targetId))];
    for (const id of ids) {
      const entry = await this.#store.entries.get(id);
      if (entry) this.#index.upsert(entry);
      else this.#index.remove(id);
    }
    this.#index.notify(ids);
    this.#index.notifyNodes([
      ...new Set(events.filter((e) => e.kind === 'node').map((e) => e.targetId)),
    ]);
  }
}

/**
 * Reads every entry into the index (dropping ones no longer stored) and returns the feed position
 * taken before the read, so nothing that changes during it is missed.
 */
async function loadAll(
  store: Pick<StoreAggregates, 'changes' | 'entries'>,
  index: EntryIndex,
): Promise<number> {
  const cursor = await store.changes.latestId();
  const seen = new Set<string>();
  let token = '';
  do {
    const page = await store.entries.list({}, 1000, token);
    for (const e of page.items) {
      index.upsert(e);
      seen.add(e.id);
    }
    token = page.nextPageToken;
  } while (token !== '');
  const gone = index.ids().filter((id) => !seen.has(id));
  for (const id of gone) index.remove(id);
  index.notify([...gone, ...seen]);
  return cursor;
}
