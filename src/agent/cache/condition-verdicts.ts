// Entry conditions on the agent (docs/posture.md): the server decides whether a workload meets
// an entry's condition (it holds posture and the node record); the agent remembers the answer
// per (workload attributes, entry revision) and serves a conditional entry only on "allowed".
// When posture or the agent's node record changes (sync.proto posture_revision, node_fingerprint)
// every remembered workload is asked again and, once the answers are in, listeners hear of it:
// the Workload API streams re-compute, so a workload that no longer qualifies loses its SVID and
// one that qualifies again gets it back.
import { attributesKey } from '../../core/attributes.ts';
import type { Entry } from '../../core/entry.ts';

export interface ConditionAnswer {
  readonly entryId: string;
  readonly allowed: boolean;
  readonly reason: string;
}

export interface ConditionVerdictsOptions {
  /** CheckEntryConditions on the server. */
  readonly check: (
    entryIds: readonly string[],
    attributes: Readonly<Record<string, string>>,
  ) => Promise<ConditionAnswer[]>;
  /** Workloads (attribute sets) remembered at most; the least recently used go first. */
  readonly maxWorkloads?: number;
  readonly log?: (msg: string, fields?: Record<string, unknown>) => void;
}

interface Workload {
  readonly attributes: Readonly<Record<string, string>>;
  /** entry id → [revision, allowed]. */
  readonly verdicts: Map<string, { readonly revision: number; readonly allowed: boolean }>;
  /** Entries last asked about (re-asked on a posture change). */
  readonly entries: Map<string, Entry>;
}

export function hasCondition(e: Entry): boolean {
  return (e.condition ?? '') !== '';
}

export class ConditionVerdicts {
  readonly #o: ConditionVerdictsOptions;
  readonly #workloads = new Map<string, Workload>();
  readonly #keys = new WeakMap<object, string>();
  readonly #listeners = new Set<() => void>();
  readonly #inflight = new Map<string, Promise<void>>();
  #posture: bigint | undefined;

  constructor(o: ConditionVerdictsOptions) {
    this.#o = o;
  }

  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #key(a: Readonly<Record<string, string>>): string {
    let k = this.#keys.get(a);
    if (k === undefined) {
      k = attributesKey(a);
      this.#keys.set(a, k);
    }
    return k;
  }

  /** true/false when known for this revision of the entry; undefined when not asked yet. */
  allowed(attributes: Readonly<Record<string, string>>, entry: Entry): boolean | undefined {
    if (!hasCondition(entry)) return true;
    const v = this.#workloads.get(this.#key(attributes))?.verdicts.get(entry.id);
    return v && v.revision === entry.revision ? v.allowed : undefined;
  }

  /** Asks the server about the conditional entries not known for these attributes. */
  async ensure(
    attributes: Readonly<Record<string, string>>,
    entries: readonly Entry[],
  ): Promise<void> {
    const missing = entries.filter((e) => this.allowed(attributes, e) === undefined);
    if (missing.length === 0) return;
    const key = this.#key(attributes);
    const pending = this.#inflight.get(key);
    if (pending) {
      await pending;
      if (entries.every((e) => this.allowed(attributes, e) !== undefined)) return;
    }
    await this.#ask(key, attributes, missing);
  }

  /**
   * The sync stream's posture revision: on a change every remembered workload is asked again;
   * listeners hear once the answers are in. The first value seen only records it.
   */
  notePostureRevision(revision: bigint): void {
    const changed = this.#posture !== undefined && this.#posture !== revision;
    this.#posture = revision;
    if (changed) this.recheck();
  }

  /**
   * Asks again for every remembered workload (posture or the node's facts changed); listeners
   * hear once the answers are in, if any answer changed.
   */
  recheck(): void {
    for (const [key, w] of this.#workloads) {
      void this.#ask(key, w.attributes, [...w.entries.values()]).catch((e: unknown) =>
        this.#o.log?.('could not re-check entry conditions', { reason: (e as Error).message }),
      );
    }
  }

  async #ask(
    key: string,
    attributes: Readonly<Record<string, string>>,
    entries: readonly Entry[],
  ): Promise<void> {
    const conditional = entries.filter(hasCondition);
    if (conditional.length === 0) return;
    const run = (async () => {
      const answers = await this.#o.check(
        conditional.map((e) => e.id),
        attributes,
      );
      let w = this.#workloads.get(key);
      if (w) this.#workloads.delete(key);
      else w = { attributes, verdicts: new Map(), entries: new Map() };
      this.#workloads.set(key, w);
      let changed = false;
      for (const e of conditional) {
        const a = answers.find((x) => x.entryId === e.id);
        const allowed = a?.allowed === true;
        const before = w.verdicts.get(e.id);
        if (!before || before.allowed !== allowed || before.revision !== e.revision) changed = true;
        w.verdicts.set(e.id, { revision: e.revision, allowed });
        w.entries.set(e.id, e);
        if (!allowed && a)
          this.#o.log?.('entry condition not met', { entryId: e.id, reason: a.reason });
      }
      const max = this.#o.maxWorkloads ?? 1024;
      while (this.#workloads.size > max) {
        const oldest = this.#workloads.keys().next().value as string;
        this.#workloads.delete(oldest);
      }
      if (changed) for (const fn of this.#listeners) fn();
    })();
    this.#inflight.set(key, run);
    try {
      await run;
    } finally {
      if (this.#inflight.get(key) === run) this.#inflight.delete(key);
    }
  }
}
