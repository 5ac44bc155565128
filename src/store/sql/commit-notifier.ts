// Commit notifications (types.ts CommitNotifications) for both dialects: a write announces its
// topic inside its transaction; the announcement is delivered to this store's listeners only once
// that transaction has committed, and dropped when it rolls back. PostgreSQL additionally sends
// a NOTIFY in the same transaction (the database delivers it to other servers on commit only);
// postgres/postgres-listener.ts receives those and hands them to `deliver`.
import type { CommitListener, CommitNotifications, CommitSource, CommitTopic } from '../types.ts';
import { sql } from 'kysely';
import type { Db } from './dialect.ts';

/** Sends a dialect's cross-server announcement inside the writing transaction (PostgreSQL). */
export type RemoteAnnounce = (trx: Db, topic: CommitTopic) => Promise<void>;

export class CommitNotifier implements CommitNotifications {
  readonly #listeners = new Map<CommitTopic, Set<CommitListener>>();
  /** Topics announced by each open transaction, keyed by its Kysely handle. */
  readonly #pending = new WeakMap<Db, Set<CommitTopic>>();
  readonly #remote: RemoteAnnounce | undefined;

  constructor(remote?: RemoteAnnounce) {
    this.#remote = remote;
  }

  subscribe(topic: CommitTopic, listener: CommitListener): () => void {
    let set = this.#listeners.get(topic);
    if (!set) this.#listeners.set(topic, (set = new Set()));
    const own = set;
    // A wrapper per subscription, so subscribing one function twice needs two unsubscribes.
    const entry: CommitListener = (t, s) => listener(t, s);
    own.add(entry);
    return () => own.delete(entry);
  }

  /**
   * Runs fn in a new transaction on `db` and, once it has committed, delivers what it announced.
   * Every transaction that may announce is opened here (sql-store.ts, dialect.ts atomic()).
   */
  async transaction<T>(db: Db, fn: (trx: Db) => Promise<T>): Promise<T> {
    const topics = new Set<CommitTopic>();
    const result = await db.transaction().execute((trx) => {
      this.#pending.set(trx, topics);
      return fn(trx);
    });
    for (const t of topics) this.deliver(t, 'local');
    return result;
  }

  /**
   * Call inside the writing transaction `trx`, after the write. To announce a new topic (add it
   * to CommitTopic and COMMIT_TOPICS), call this from the aggregate's writes; a write that is a
   * single statement outside any transaction goes through atomic() so that there is one.
   */
  async announce(trx: Db, topic: CommitTopic): Promise<void> {
    const topics = this.#pending.get(trx);
    if (!trx.isTransaction || !topics) {
      // A programming error: delivering now could precede the commit.
      throw new TypeError('announce() outside a transaction opened by CommitNotifier');
    }
    if (topics.has(topic)) return;
    topics.add(topic);
    // Every write announcing `access` bumps the access revision in its own transaction, whoever
    // wrote it: the value agents compare to drop cached credentials (AccessRevisionStore) then
    // changes with the write, atomically and the same for every server sharing the database.
    if (topic === 'access') {
      await sql`update access_revision set revision = revision + 1 where id = 1`.execute(trx);
    }
    await this.#remote?.(trx, topic);
  }

  /** Calls the topic's listeners; a listener's throw is dropped (see CommitNotifications). */
  deliver(topic: CommitTopic, source: CommitSource): void {
    for (const listener of this.#listeners.get(topic) ?? []) {
      try {
        listener(topic, source);
      } catch {
        // The write committed; its caller must not see a listener's failure.
      }
    }
  }
}
