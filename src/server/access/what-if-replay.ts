// The loader around what-if.ts: reads the recorded `access.request` records of a time window
// from the audit store (bounded), the current model from the datastore, and replays them.
import type { ServerWorkload } from '../../core/access.ts';
import type { AuditRecord } from '../../core/audit.ts';
import type { Clock } from '../../core/clock.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import type { AuditStore } from '../../store/types.ts';
import type { AccessPolicySource } from './decider.ts';
import { buildPolicyIndex, type DecisionPolicy } from './policy-index.ts';
import { ACCESS_REQUEST_ACTION, proposedIndex, Replay, type WhatIfReport } from './what-if.ts';

export const DEFAULT_WHAT_IF_WINDOW_MS = 24 * 3_600_000;
export const MAX_WHAT_IF_WINDOW_MS = 90 * 24 * 3_600_000;
/** Records replayed at most per what-if (the oldest of the window first). */
export const MAX_REPLAYED_RECORDS = 100_000;
const PAGE = 1000;

/** The part of a parsed access document what-if reads. */
export interface ProposedModel {
  readonly serverWorkloads: readonly Pick<ServerWorkload, 'name'>[];
  readonly accessPolicies: readonly DecisionPolicy[];
}

export interface WhatIfDeps {
  readonly audit: Pick<AuditStore, 'list' | 'head'>;
  readonly source: AccessPolicySource;
  readonly clock: Clock;
  /** Default MAX_REPLAYED_RECORDS (tests lower it). */
  readonly maxRecords?: number;
}

export interface WhatIfResult extends WhatIfReport {
  /** The window replayed, epoch ms. */
  readonly from: number;
  readonly to: number;
}

/**
 * Replays the `access.request` records of the last `windowMs` (0 = 24 h) against the current set
 * and `proposed` — whose policies replace the current ones, whose server workloads are added to
 * (or replace, by name) the current ones. InvalidArgumentError for a bad window or proposal.
 */
export async function whatIf(
  deps: WhatIfDeps,
  proposed: ProposedModel,
  windowMs: number,
): Promise<WhatIfResult> {
  const window = windowMs === 0 ? DEFAULT_WHAT_IF_WINDOW_MS : windowMs;
  if (!Number.isSafeInteger(window) || window < 0 || window > MAX_WHAT_IF_WINDOW_MS)
    throw new InvalidArgumentError(
      `since: must be between 1 ms and ${MAX_WHAT_IF_WINDOW_MS / 86_400_000} days`,
    );
  const [servers, policies] = await Promise.all([
    deps.source.listServerWorkloads(),
    deps.source.listPolicies(),
  ]);
  const merged = new Map<string, Pick<ServerWorkload, 'name'>>(servers.map((s) => [s.name, s]));
  for (const s of proposed.serverWorkloads) merged.set(s.name, s);
  const after = proposedIndex([...merged.values()], proposed.accessPolicies);
  const before = buildPolicyIndex(servers, policies).index;

  const to = deps.clock.now();
  const from = to - window;
  const run = new Replay(before, after);
  const { truncated } = await forEachRecordSince(
    deps.audit,
    from,
    deps.maxRecords ?? MAX_REPLAYED_RECORDS,
    (r) => run.add(r),
  );
  return { ...run.report(truncated), from, to };
}

/**
 * Visits the `access.request` records at or after `from`, oldest first, at most `max`, a page at
 * a time. The audit log is ordered by seq and its times increase with it (appended under a lock
 * as they happen), so the window's first seq is found by bisection over the whole log; records
 * are then read by action. `truncated`: the window held more than `max`.
 */
export async function forEachRecordSince(
  audit: Pick<AuditStore, 'list' | 'head'>,
  from: number,
  max: number,
  visit: (r: AuditRecord) => void,
): Promise<{ count: number; truncated: boolean }> {
  const head = await audit.head();
  let lo = 1;
  let hi = head.seq + 1; // first seq whose record is at or after `from`, in [lo, hi]
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const [r] = await audit.list({ afterSeq: mid - 1 }, 1);
    if (!r) hi = mid;
    else if (r.time >= from) hi = Math.min(mid, r.seq);
    else lo = r.seq + 1;
  }
  let count = 0;
  let cursor = lo - 1;
  for (;;) {
    const page = await audit.list({ afterSeq: cursor, action: ACCESS_REQUEST_ACTION }, PAGE);
    for (const r of page) {
      // Clocks step back now and then: the bisection is a start, this is the rule.
      if (r.time < from) continue;
      if (count === max) return { count, truncated: true };
      visit(r);
      count++;
    }
    if (page.length < PAGE) return { count, truncated: false };
    cursor = page[page.length - 1]!.seq;
  }
}
