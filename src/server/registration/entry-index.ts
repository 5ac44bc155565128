// In-memory index of registration entries, answering "which entries may this agent mint for?"
// in time proportional to the answer, not to the number of entries. Kept current from the
// change feed by ChangeFollower; never scans tables per request.
import { type Entry, isExpired } from '../../core/entry.ts';
import { formatSelector } from '../../core/selector.ts';

export class EntryIndex {
  readonly #byId = new Map<string, Entry>();
  readonly #byParent = new Map<string, Set<string>>();
  readonly #bySpiffeId = new Map<string, Set<string>>();
  /** Node alias entries (parent = server ID) by each of their selectors. */
  readonly #aliasesBySelector = new Map<string, Set<string>>();
  /** SPIFFE ID → ids of the admin entries naming it. */
  readonly #admins = new Map<string, Set<string>>();
  readonly #serverId: string;
  readonly #listeners = new Set<(changedIds: readonly string[]) => void>();
  readonly #nodeListeners = new Set<(nodeIds: readonly string[]) => void>();

  constructor(serverId: string) {
    this.#serverId = serverId;
  }

  get size(): number {
    return this.#byId.size;
  }

  ids(): string[] {
    return [...this.#byId.keys()];
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
    addTo(this.#bySpiffeId, entry.spiffeId, entry.id);
    if (entry.admin) addTo(this.#admins, entry.spiffeId, entry.id);
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

  /**
   * True when an admin entry names this SPIFFE ID; with `now`, only an unexpired one counts
   * (callers should pass it: an expired entry grants nothing).
   */
  isAdmin(spiffeId: string, now?: number): boolean {
    const ids = this.#admins.get(spiffeId);
    if (!ids) return false;
    if (now === undefined) return true;
    for (const id of ids) {
      const e = this.#byId.get(id);
      if (e && !isExpired(e, now)) return true;
    }
    return false;
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
   * Subscribe to node record changes seen in the change feed (attested, re-attested, banned,
   * evicted), by node SPIFFE ID. Returns unsubscribe.
   */
  onNodesChange(fn: (nodeIds: readonly string[]) => void): () => void {
    this.#nodeListeners.add(fn);
    return () => this.#nodeListeners.delete(fn);
  }

  notifyNodes(nodeIds: readonly string[]): void {
    if (nodeIds.length === 0) return;
    for (const fn of this.#nodeListeners) fn(nodeIds);
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

  /**
   * The entry, when this agent may mint for it (the same rule as authorizedFor), found by walking
   * up from the entry rather than down from the agent: the cost is the entry's depth, not the
   * size of the agent's answer. The hot path of every SVID request.
   */
  authorizedEntry(
    agentId: string,
    nodeSelectors: ReadonlySet<string>,
    entryId: string,
    now: number,
  ): Entry | undefined {
    const e = this.#byId.get(entryId);
    if (!e || isExpired(e, now)) return undefined;
    return this.#reaches(e.parentId, agentId, nodeSelectors, now, new Set()) ? e : undefined;
  }

  /** Whether `id` is the agent, a matching node alias, or the SPIFFE ID of an authorized entry. */
  #reaches(
    id: string,
    agentId: string,
    nodeSelectors: ReadonlySet<string>,
    now: number,
    seen: Set<string>,
  ): boolean {
    if (id === agentId) return true;
    if (seen.has(id)) return false;
    seen.add(id);
    for (const cid of this.#bySpiffeId.get(id) ?? []) {
      const c = this.#byId.get(cid);
      if (!c || isExpired(c, now)) continue;
      if (
        c.parentId === this.#serverId &&
        c.selectors.every((s) => nodeSelectors.has(formatSelector(s)))
      )
        return true;
      if (this.#reaches(c.parentId, agentId, nodeSelectors, now, seen)) return true;
    }
    return false;
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
    removeFrom(this.#bySpiffeId, e.spiffeId, e.id);
    if (e.admin) {
      removeFrom(this.#admins, e.spiffeId, e.id);
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
