// Refresh of attested nodes' platform attributes (aws_iid's EC2 tags, security groups, instance
// profile): a running agent renews its SVID without attesting again, so the server re-reads them
// itself through the attestor's refresher and, when the selectors differ, replaces the node
// record's selectors in one transaction with its audit record. The change event that write
// appends makes each agent's sync stream push the new node fingerprint (sync/agent-sync.ts), and
// the agent re-checks its workloads' entry conditions.
//
// Never more than that: a failure (instance gone, API error) is logged and audited and keeps the
// record as it is — no delete, no ban. Several servers sharing a database may each run it: the
// write is a compare-and-set on the selectors read before asking the platform (one statement), so
// a change is written and audited once, and a node re-attested or banned meanwhile is left alone.
import type { Clock } from '../../core/clock.ts';
import type { RequestContext } from '../../core/caller.ts';
import type { AttestedNode } from '../../core/node.ts';
import { type Selector, formatSelector } from '../../core/selector.ts';
import type {
  NodeRefreshOutcome,
  NodeSelectorRefresher,
} from '../../plugins/node-attestors/node-attestor.ts';
import type { Store } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';

/** Nodes refreshed per run at most; the next run continues where this one stopped. */
export const MAX_NODES_PER_RUN = 1000;
/** Platform calls in flight at once. */
export const REFRESH_CONCURRENCY = 4;
/** Failures remembered (to audit a node's failure once, not every run); cleared when full. */
const MAX_REMEMBERED_FAILURES = 10_000;

export interface NodeRefreshOptions {
  readonly store: Pick<Store, 'transaction' | 'nodes'>;
  readonly auditor: Auditor;
  readonly clock: Clock;
  /** The attestation type whose nodes are refreshed. */
  readonly type: string;
  readonly refresher: NodeSelectorRefresher;
  readonly warn: (fields: Record<string, unknown>, msg: string) => void;
  readonly maxNodesPerRun?: number;
  readonly concurrency?: number;
}

export interface NodeRefreshRun {
  readonly checked: number;
  readonly changed: number;
  readonly failed: number;
}

/** The refresh is the server's own doing, not a caller's (as federation's bundle fetches). */
const systemContext = (type: string): RequestContext => ({
  caller: { kind: 'local-admin' },
  correlationId: `node-refresh:${type}`,
});

/** `tag`, `sg`, `instance_profile`: the selector value's first segment. */
const kindOf = (s: Selector) => `${s.type}:${s.value.split(':', 1)[0] ?? ''}`;

/** Added and removed selectors, by formatted text (order does not matter). */
export function selectorDiff(before: readonly Selector[], after: readonly Selector[]) {
  const b = new Map(before.map((s) => [formatSelector(s), s]));
  const a = new Map(after.map((s) => [formatSelector(s), s]));
  const added = [...a].filter(([k]) => !b.has(k)).map(([, s]) => s);
  const removed = [...b].filter(([k]) => !a.has(k)).map(([, s]) => s);
  return { added, removed };
}

export class NodeRefresh {
  readonly #o: NodeRefreshOptions;
  /** Where the next run starts (a page token over the node list); "" = from the start. */
  #cursor = '';
  /** Last failure reason audited per node (this process only). */
  readonly #failures = new Map<string, string>();

  constructor(o: NodeRefreshOptions) {
    this.#o = o;
  }

  /** One pass over at most maxNodesPerRun attested, non-banned nodes of the type. */
  async run(): Promise<NodeRefreshRun> {
    const nodes = await this.#nextNodes();
    const counts = { checked: 0, changed: 0, failed: 0 };
    let next = 0;
    const worker = async () => {
      while (next < nodes.length) {
        const node = nodes[next++] as AttestedNode;
        const r = await this.#refreshOne(node);
        counts.checked++;
        if (r === 'changed') counts.changed++;
        if (r === 'failed') counts.failed++;
      }
    };
    // A store error rejects the run (the task retries next tick); the other workers finish theirs.
    const workers = Math.min(this.#o.concurrency ?? REFRESH_CONCURRENCY, nodes.length);
    const results = await Promise.allSettled(Array.from({ length: workers }, worker));
    const failure = results.find((r) => r.status === 'rejected');
    if (failure) throw failure.reason;
    return counts;
  }

  async #nextNodes(): Promise<AttestedNode[]> {
    const max = this.#o.maxNodesPerRun ?? MAX_NODES_PER_RUN;
    const out: AttestedNode[] = [];
    let token = this.#cursor;
    do {
      const page = await this.#o.store.nodes.list(
        { attestationType: this.#o.type, banned: false },
        Math.min(1000, max - out.length),
        token,
      );
      out.push(...page.items);
      token = page.nextPageToken;
    } while (token !== '' && out.length < max);
    this.#cursor = token;
    return out;
  }

  async #refreshOne(node: AttestedNode): Promise<'same' | 'changed' | 'failed' | 'lost'> {
    let outcome: NodeRefreshOutcome;
    try {
      outcome = await this.#o.refresher.refresh(node.selectors);
    } catch (e) {
      // A refresher reports failures as outcomes; a throw is a bug, kept out of the audit text.
      this.#o.warn(
        { node: node.spiffeId, err: e instanceof Error ? e.message : String(e) },
        'node attribute refresh failed unexpectedly',
      );
      outcome = { failed: `${this.#o.type}: internal error while refreshing` };
    }
    if ('failed' in outcome) {
      await this.#failed(node, outcome.failed);
      return 'failed';
    }
    this.#failures.delete(node.spiffeId);
    const { added, removed } = selectorDiff(node.selectors, outcome.selectors);
    if (added.length === 0 && removed.length === 0) return 'same';
    const changed = [...new Set([...added, ...removed].map(kindOf))].sort();
    return this.#o.store.transaction(async (tx) => {
      const updated = await tx.nodes.replaceSelectors(
        node.spiffeId,
        node.selectors,
        outcome.selectors,
        this.#o.clock.now(),
      );
      // Re-attested, banned, evicted or refreshed by another server since it was read.
      if (updated === null) return 'lost';
      // Kinds and counts only: tag values are the operator's text, kept out of the audit trail.
      await this.#o.auditor.record(tx, systemContext(this.#o.type), {
        action: 'node.attributes_refreshed',
        target: node.spiffeId,
        outcome: 'success',
        details: {
          attestor: this.#o.type,
          changed,
          added: added.length,
          removed: removed.length,
        },
      });
      return 'changed';
    });
  }

  /** Logged and audited once per node and reason (not every run); the record is kept. */
  async #failed(node: AttestedNode, reason: string): Promise<void> {
    if (this.#failures.get(node.spiffeId) === reason) return;
    if (this.#failures.size >= MAX_REMEMBERED_FAILURES) this.#failures.clear();
    this.#failures.set(node.spiffeId, reason);
    this.#o.warn(
      { node: node.spiffeId, reason },
      'node attributes not refreshed; the node record is kept as it is',
    );
    await this.#o.auditor.log(systemContext(this.#o.type), {
      action: 'node.attributes_refresh_failed',
      target: node.spiffeId,
      outcome: 'error',
      details: { attestor: this.#o.type, reason },
    });
  }
}
