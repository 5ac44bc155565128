// The private keys of this server's authorities, and the key journal that makes their deletion
// crash-safe.
//
// Every key this server generates goes through the key journal (store KeyJournalStore). `pending`
// is committed before the key is generated; one transaction then records the authority, marks the
// key `committed`, updates the bundle and appends the audit record. Removing an authority marks
// its key `retired` in the same transaction, and the file is deleted after. Start-up finishes what
// a crash interrupted: it deletes the keys of its own journal that are `retired`, or `pending`
// with no authority record. A key file the journal does not mention is never deleted: "this
// datastore does not know it" may mean it belongs to another server or another datastore (a
// second server started on this directory once deleted the first one's keys that way).
import type { Authority } from '../../core/authority.ts';
import type { Clock } from '../../core/clock.ts';
import type { KeyManager, ManagedKey } from '../../crypto/key-manager.ts';
import type { KeyJournalStore, StoreAggregates } from '../../store/types.ts';

export class AuthorityKeys {
  readonly #o: { keys: KeyManager; journal: KeyJournalStore; serverId: string; clock: Clock };
  readonly #held = new Map<string, ManagedKey>();

  constructor(o: { keys: KeyManager; journal: KeyJournalStore; serverId: string; clock: Clock }) {
    this.#o = o;
  }

  /** Loads, from the key manager, the keys of these authorities not held yet. */
  async load(authorities: readonly Authority[]): Promise<void> {
    for (const a of authorities) {
      if (this.#held.has(a.keyRef)) continue;
      const key = await this.#o.keys.get(a.keyRef);
      if (key) this.#held.set(a.keyRef, key);
    }
  }

  get(keyRef: string): ManagedKey | undefined {
    return this.#held.get(keyRef);
  }

  /** Where the key manager keeps (or kept) the key: for messages. */
  locate(keyRef: string): string {
    return this.#o.keys.locate(keyRef);
  }

  /**
   * Committed before the key exists: a crash from here to the transaction leaves a `pending`
   * record that start-up resolves. A failed transaction leaves it too (it may have committed
   * after all, unseen), so the key is never deleted on a guess.
   */
  begin(keyRef: string, now: number): Promise<void> {
    return this.#o.journal.set(this.#o.serverId, keyRef, 'pending', now);
  }

  /** In the transaction that records the authority. */
  commit(tx: StoreAggregates, keyRef: string, now: number): Promise<void> {
    return tx.keyJournal.set(this.#o.serverId, keyRef, 'committed', now);
  }

  /** After the recording transaction: the key it committed. */
  hold(keyRef: string, key: ManagedKey): void {
    this.#held.set(keyRef, key);
  }

  /** In the transaction that removes the authority: from now on its key is ours to delete. */
  retire(tx: StoreAggregates, keyRef: string): Promise<void> {
    return tx.keyJournal.set(this.#o.serverId, keyRef, 'retired', this.#o.clock.now());
  }

  /** After the retiring transaction: the file, then the record (a crash between is re-swept). */
  async delete(keyRef: string): Promise<void> {
    this.#held.delete(keyRef);
    await this.#o.keys.delete(keyRef);
    await this.#o.journal.delete(this.#o.serverId, keyRef);
  }

  /**
   * Start-up: deletes the keys this server's journal retired, and those it began to generate
   * whose authority never committed. Nothing else: a key some authority record still names is
   * kept whatever the journal says, and a key the journal does not mention is not ours to judge.
   */
  async sweep(authorities: readonly Authority[]): Promise<void> {
    const named = new Set(authorities.map((a) => a.keyRef));
    for (const r of await this.#o.journal.list(this.#o.serverId)) {
      if (named.has(r.keyRef) || r.state === 'committed') continue;
      await this.delete(r.keyRef);
    }
  }
}
