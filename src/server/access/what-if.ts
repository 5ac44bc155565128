// What-if (docs/access.md "Testing a policy and what-if"): recorded `access.request` audit records
// replayed against the current policy set and a proposed one, both at the recorded time, listing
// every request whose decision would flip (allow → deny, deny → allow). Pure: arrays in, report
// out; what-if-replay.ts loads the records and the sets.
import type {
  AccessDecision,
  AccessHttpRequest,
  AccessRequest,
  AccessRequestAuditDetails,
  ServerWorkload,
} from '../../core/access.ts';
import type { AuditRecord } from '../../core/audit.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { parseSelector, type Selector } from '../../core/selector.ts';
import {
  buildPolicyIndex,
  compileAccessPolicy,
  decideAccess,
  type DecisionPolicy,
  type PolicyIndex,
} from './policy-index.ts';

export const ACCESS_REQUEST_ACTION = 'access.request';
/** Flips listed in a report; the count covers them all. */
export const MAX_LISTED_FLIPS = 1000;

/** An `access.request` record, as the decision saw it. */
export interface RecordedRequest {
  readonly seq: number;
  readonly time: number;
  readonly request: AccessRequest;
}

export interface AccessFlip {
  readonly seq: number;
  readonly time: number;
  readonly client: string;
  readonly server: string;
  /** Under the current set. */
  readonly before: AccessDecision;
  /** Under the proposed set. */
  readonly after: AccessDecision;
}

export interface WhatIfReport {
  /** Records replayed. */
  readonly replayed: number;
  /** Records that could not be read as a request (malformed details); not replayed. */
  readonly unreadable: number;
  /** More records were in the window than were replayed (the oldest were replayed). */
  readonly truncated: boolean;
  /** Every flip, at most MAX_LISTED_FLIPS of them, in record order. */
  readonly flips: readonly AccessFlip[];
  readonly flipCount: number;
  readonly allowToDeny: number;
  readonly denyToAllow: number;
}

/** The request an `access.request` record describes; null when its details are not that shape. */
export function recordedRequest(r: AuditRecord): RecordedRequest | null {
  if (r.action !== ACCESS_REQUEST_ACTION) return null;
  const d = r.details as Partial<Record<keyof AccessRequestAuditDetails, unknown>>;
  if (typeof d.client !== 'string' || typeof d.server !== 'string') return null;
  const selectors: Selector[] = [];
  if (d.selectors !== undefined) {
    if (!Array.isArray(d.selectors)) return null;
    for (const s of d.selectors as unknown[]) {
      if (typeof s !== 'string') return null;
      try {
        selectors.push(parseSelector(s));
      } catch {
        return null;
      }
    }
  }
  // Null prototype: a recorded "__proto__" attribute stays an attribute.
  const attributes = Object.create(null) as Record<string, string>;
  if (d.attributes !== undefined) {
    if (typeof d.attributes !== 'object' || d.attributes === null || Array.isArray(d.attributes))
      return null;
    for (const [k, v] of Object.entries(d.attributes)) {
      if (typeof v !== 'string') return null;
      attributes[k] = v;
    }
  }
  let request: AccessHttpRequest | undefined;
  if (d.request !== undefined) {
    const q = d.request as Partial<Record<keyof AccessHttpRequest, unknown>> | null;
    if (
      typeof q !== 'object' ||
      q === null ||
      typeof q.method !== 'string' ||
      typeof q.path !== 'string' ||
      typeof q.host !== 'string'
    )
      return null;
    request = { method: q.method, path: q.path, host: q.host };
  }
  return {
    seq: r.seq,
    time: r.time,
    request: {
      client: { spiffeId: d.client, selectors, attributes },
      server: d.server,
      at: r.time,
      ...(request ? { request } : {}),
    },
  };
}

/**
 * The proposed set's index. Unlike the current set (whose unusable policies are skipped and
 * logged), a proposal is refused whole when any of its policies does not compile or names a
 * server workload that exists neither now nor in the proposal: the operator is told which.
 */
export function proposedIndex(
  servers: readonly Pick<ServerWorkload, 'name'>[],
  policies: readonly DecisionPolicy[],
): PolicyIndex {
  const known = new Set(servers.map((s) => s.name));
  for (const p of policies) {
    const what = `access_policies "${p.name}"`;
    if (!known.has(p.server))
      throw new InvalidArgumentError(`${what}: server: unknown server workload "${p.server}"`);
    try {
      compileAccessPolicy(p);
    } catch (e) {
      throw new InvalidArgumentError(`${what}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return buildPolicyIndex(servers, policies).index;
}

/**
 * Replays records one at a time against both sets, keeping only the counts and the listed flips
 * (a window of 100,000 records is never held in memory at once).
 */
export class Replay {
  readonly #current: PolicyIndex;
  readonly #proposed: PolicyIndex;
  readonly #flips: AccessFlip[] = [];
  #replayed = 0;
  #unreadable = 0;
  #flipCount = 0;
  #allowToDeny = 0;

  constructor(current: PolicyIndex, proposed: PolicyIndex) {
    this.#current = current;
    this.#proposed = proposed;
  }

  add(r: AuditRecord): void {
    const rec = recordedRequest(r);
    if (!rec) {
      this.#unreadable++;
      return;
    }
    this.#replayed++;
    const before = decideAccess(this.#current, rec.request);
    const after = decideAccess(this.#proposed, rec.request);
    if (before.allowed === after.allowed) return;
    this.#flipCount++;
    if (before.allowed) this.#allowToDeny++;
    if (this.#flips.length < MAX_LISTED_FLIPS)
      this.#flips.push({
        seq: rec.seq,
        time: rec.time,
        client: rec.request.client.spiffeId,
        server: rec.request.server,
        before,
        after,
      });
  }

  report(truncated: boolean): WhatIfReport {
    return {
      replayed: this.#replayed,
      unreadable: this.#unreadable,
      truncated,
      flips: [...this.#flips],
      flipCount: this.#flipCount,
      allowToDeny: this.#allowToDeny,
      denyToAllow: this.#flipCount - this.#allowToDeny,
    };
  }
}

/** Replays every record against both sets. */
export function replay(
  records: readonly AuditRecord[],
  current: PolicyIndex,
  proposed: PolicyIndex,
  truncated = false,
): WhatIfReport {
  const r = new Replay(current, proposed);
  for (const rec of records) r.add(rec);
  return r.report(truncated);
}
