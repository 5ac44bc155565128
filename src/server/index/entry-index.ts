// In-memory index of registration entries, answering "which entries may this agent mint for?"
// in time proportional to the answer, not to the number of entries. Kept current from the
// change feed by ChangeFollower; never scans tables per request.
import { type Entry, isExpired } from '../../core/entry.ts';
import { formatSelector } from '../../core/selector.ts';

export class EntryIndex {
  readonly #byId = new Map<string, Entry>();
  readonly #byParent = new Map<string, Set<string>>();
  /** Node alias entries (parent = server ID) by each of their selectors. */
  readonly #aliasesBySelector = new Map<string, Set<string>>();
  /** SPIFFE ID → number of admin entries naming it. */
  readonly #admins = new Map<string, number>();
  readonly #serverId: string;
  readonly #listeners = new Set<(changedIds: readonly string[]) => void>();

  constructor(serverId: string) {
    this.#serverId = serverId;
  }

  get size(): number {
    return this.#byId.size;
  }

  get(id: string): Entry | undefined {
    return this.#byId.get(id);
  }

  upsert(entry: Entry): void {
    const old = this.#byId.get(entry.id);
    if (old && old.revision > entry.revision) return;
    if (old) this.#unlink(old);
    this.#byId.set(entry.id, entry);
    addTo(this.#byParent, entry.parentId, entry.id);
    if (entry.admin) this.#admins.set(entry.spiffeId, (this.#admins.get(entry.spiffeId) ?? 0) + 1);
    if (entry.parentId === this.#serverId) {
      for (const s of entry.selectors) addTo(this.#aliasesBySelector, formatSelector(s), entry.id);
    }
  }

  remove(id: string): void {
    const old = this.#byId.get(id);
    if (!old) return;
    this.#unlink(old);
    this.#byId.delete(id);
  }

  /** True when an unexpired admin entry names this SPIFFE ID. */
  isAdmin(spiffeId: string): boolean {
    return this.#admins.has(spiffeId);
  }

  /** Subscribe to change notifications (entry ids upserted or removed). Returns unsubscribe. */
  onChange(fn: (changedIds: readonly string[]) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  notify(changedIds: readonly string[]): void {
    if (changedIds.length === 0) return;
    for (const fn of this.#listeners) fn(changedIds);
  }

  /**
   * Entries an agent may mint for: descendants of the agent's ID, directly or through node alias
   * entries whose selectors are all among the agent's node selectors. Expired entries excluded.
   */
  authorizedFor(agentId: string, nodeSelectors: ReadonlySet<string>, now: number): Entry[] {
    const roots = [agentId, ...this.#matchingAliases(nodeSelectors, now)];
    const out: Entry[] = [];
    const seenIds = new Set<string>();
    const visitedParents = new Set<string>();
    const queue = [...roots];
    while (queue.length > 0) {
      const parent = queue.pop() as string;
      if (visitedParents.has(parent)) continue;
      visitedParents.add(parent);
      for (const id of this.#byParent.get(parent) ?? []) {
        const e = this.#byId.get(id);
        if (!e || seenIds.has(id) || isExpired(e, now)) continue;
        seenIds.add(id);
        out.push(e);
        queue.push(e.spiffeId);
      }
    }
    return out;
  }

  /** Unexpired aliases only: an expired alias grants nothing, like any expired entry. */
  #matchingAliases(nodeSelectors: ReadonlySet<string>, now: number): string[] {
    const hits = new Map<string, number>();
    for (const s of nodeSelectors) {
      for (const id of this.#aliasesBySelector.get(s) ?? []) hits.set(id, (hits.get(id) ?? 0) + 1);
    }
    const out: string[] = [];
    for (const [id, n] of hits) {
      const alias = this.#byId.get(id);
      if (alias && n === alias.selectors.length && !isExpired(alias, now)) out.push(alias.spiffeId);
    }
    return out;
  }

  #unlink(e: Entry): void {
    removeFrom(this.#byParent, e.parentId, e.id);
    if (e.admin) {
      const n = (this.#admins.get(e.spiffeId) ?? 1) - 1;
      if (n > 0) this.#admins.set(e.spiffeId, n);
      else this.#admins.delete(e.spiffeId);
    }
    if (e.parentId === this.#serverId) {
      for (const s of e.selectors) removeFrom(this.#aliasesBySelector, formatSelector(s), e.id);
    }
  }
}

function addTo(m: Map<string, Set<string>>, k: string, v: string): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(v);
}

function removeFrom(m: Map<string, Set<string>>, k: string, v: string): void {
  const s = m.get(k);
  if (!s) return;
  s.delete(v);
  if (s.size === 0) m.delete(k);
}
