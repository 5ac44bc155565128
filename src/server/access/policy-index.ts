// The compiled policy set and the decision over it (docs/access.md "Order of evaluation"). Pure:
// built from lists, decided without I/O, so the live decider (decider.ts), what-if (both sides)
// and `access-policy test` share one implementation.
//
// Index: server workload → { exact ID → policies, trust domain → globs, trust domain → policies }.
// A decision looks at the policies of one server workload whose pattern can match the client's
// trust domain: an exact-map hit, that trust domain's globs and its whole-domain policies — never
// at other servers' or other trust domains' policies, so 10,000 policies cost about what 10 do.
// Each list is sorted by specificity then name at build time; exact < glob < trust domain, so
// the concatenation of the three is in evaluation order without sorting per decision.
import type {
  AccessDecision,
  AccessPolicy,
  AccessRequest,
  ServerWorkload,
} from '../../core/access.ts';
import { SpiffeId } from '../../core/spiffe-id.ts';
import {
  compileAccessCondition,
  conditionInput,
  describeFailure,
  evaluateAccessCondition,
  type AccessCondition,
  type ConditionInput,
  type ConditionResult,
} from './access-condition.ts';
import {
  compareSpecificity,
  matchesClient,
  parseClientPattern,
  type ClientPattern,
} from './client-pattern.ts';

/** The fields a decision reads (stored policies and parsed documents both have them). */
export type DecisionPolicy = Pick<
  AccessPolicy,
  'name' | 'client' | 'server' | 'credentialProvider' | 'condition' | 'effect'
>;

export interface CompiledAccessPolicy {
  readonly policy: DecisionPolicy;
  readonly pattern: ClientPattern;
  /** null: no condition (always holds). */
  readonly condition: AccessCondition | null;
  /**
   * A stored deny policy whose condition no longer compiles: kept, its condition counting as an
   * error (so it denies what its pattern matches) — skipping it would open access.
   */
  readonly broken?: string;
}

interface ServerBucket {
  readonly exact: Map<string, CompiledAccessPolicy[]>;
  readonly globs: Map<string, CompiledAccessPolicy[]>;
  readonly trustDomains: Map<string, CompiledAccessPolicy[]>;
}

export interface PolicyIndex {
  readonly servers: ReadonlyMap<string, ServerBucket>;
  /** Policies indexed (compiled and naming a known server workload). */
  readonly size: number;
}

export interface SkippedPolicy {
  readonly policy: string;
  readonly error: string;
  /** A deny policy kept as an unconditional deny (its pattern parsed, its condition did not). */
  readonly keptAsDeny?: boolean;
}

export interface BuiltIndex {
  readonly index: PolicyIndex;
  /** Policies that do not compile or name an unknown server workload; not in the index. */
  readonly skipped: readonly SkippedPolicy[];
}

/** Compiles one policy. Throws InvalidArgumentError naming the field ("client: …", "condition: …"). */
export function compileAccessPolicy(policy: DecisionPolicy): CompiledAccessPolicy {
  return {
    policy,
    pattern: parseClientPattern(policy.client),
    condition: compileAccessCondition(policy.condition),
  };
}

/** Specificity, then policy name (ascending). */
export function compareCompiled(a: CompiledAccessPolicy, b: CompiledAccessPolicy): number {
  const s = compareSpecificity(a.pattern, b.pattern);
  if (s !== 0) return s;
  return a.policy.name < b.policy.name ? -1 : a.policy.name > b.policy.name ? 1 : 0;
}

/**
 * Builds the index. Never throws for a bad policy: it is skipped and reported (a stored policy
 * that no longer compiles, e.g. after a CEL limit was lowered, must not stop every decision).
 */
export function buildPolicyIndex(
  servers: ReadonlyArray<Pick<ServerWorkload, 'name'>>,
  policies: readonly DecisionPolicy[],
  compiled: (p: DecisionPolicy) => CompiledAccessPolicy = compileAccessPolicy,
): BuiltIndex {
  const buckets = new Map<string, ServerBucket>();
  for (const s of servers)
    buckets.set(s.name, { exact: new Map(), globs: new Map(), trustDomains: new Map() });
  const skipped: SkippedPolicy[] = [];
  let size = 0;
  for (const p of policies) {
    const bucket = buckets.get(p.server);
    if (!bucket) {
      skipped.push({ policy: p.name, error: `server: unknown server workload "${p.server}"` });
      continue;
    }
    let c: CompiledAccessPolicy;
    try {
      c = compiled(p);
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      const kept = p.effect === 'deny' ? brokenDeny(p, error) : null;
      skipped.push({ policy: p.name, error, ...(kept ? { keptAsDeny: true } : {}) });
      if (!kept) continue;
      c = kept;
    }
    const map =
      c.pattern.kind === 'exact'
        ? bucket.exact
        : c.pattern.kind === 'glob'
          ? bucket.globs
          : bucket.trustDomains;
    const key = c.pattern.kind === 'exact' ? c.pattern.source : c.pattern.trustDomain;
    const list = map.get(key);
    if (list) list.push(c);
    else map.set(key, [c]);
    size++;
  }
  for (const b of buckets.values())
    for (const map of [b.exact, b.globs, b.trustDomains])
      for (const list of map.values()) list.sort(compareCompiled);
  return { index: { servers: buckets, size }, skipped };
}

function brokenDeny(policy: DecisionPolicy, error: string): CompiledAccessPolicy | null {
  try {
    return { policy, pattern: parseClientPattern(policy.client), condition: null, broken: error };
  } catch {
    return null; // no pattern, nothing it could match
  }
}

const EMPTY: readonly CompiledAccessPolicy[] = Object.freeze([]);

function decision(
  reason: AccessDecision['reason'],
  policy = '',
  failedCondition = '',
  credentialProvider = '',
): AccessDecision {
  return { allowed: reason === 'allowed', reason, policy, credentialProvider, failedCondition };
}

/** A client ID as decisions use it: parsed once, split once. */
export interface ParsedClient {
  readonly text: string;
  readonly trustDomain: string;
  /** "" or "/a/b". */
  readonly path: string;
  readonly segments: readonly string[];
}

/**
 * Parsed client IDs, by text. The same few clients ask again and again, and a full SPIFFE ID
 * parse costs about what the condition does; bounded, and emptied when full.
 */
const parsedClients = new Map<string, ParsedClient | null>();
const MAX_PARSED_CLIENTS = 4096;

export function parsedClient(text: string): ParsedClient | null {
  const hit = parsedClients.get(text);
  if (hit !== undefined) return hit;
  let parsed: ParsedClient | null;
  try {
    const id = SpiffeId.parse(text);
    parsed = Object.freeze({
      text: id.toString(),
      trustDomain: id.trustDomain.name,
      path: id.path,
      segments: Object.freeze(id.path === '' ? [] : id.path.slice(1).split('/')),
    });
  } catch {
    parsed = null;
  }
  if (parsedClients.size >= MAX_PARSED_CLIENTS) parsedClients.clear();
  parsedClients.set(text, parsed);
  return parsed;
}

/** The matching policies of the request's server workload, most specific first. */
export function matchingPolicies(
  bucket: ServerBucket,
  id: ParsedClient,
): readonly CompiledAccessPolicy[] {
  const td = id.trustDomain;
  const segments = id.segments;
  const exact = id.path === '' ? EMPTY : (bucket.exact.get(id.text) ?? EMPTY);
  const globs = bucket.globs.get(td) ?? EMPTY;
  const domain = segments.length > 0 ? (bucket.trustDomains.get(td) ?? EMPTY) : EMPTY;
  // Allocate only when a glob matches: most decisions are an exact or a domain hit.
  let out: CompiledAccessPolicy[] | undefined;
  for (const g of globs) if (matchesClient(g.pattern, td, segments)) (out ??= [...exact]).push(g);
  if (!out)
    return domain.length === 0 ? exact : exact.length === 0 ? domain : [...exact, ...domain];
  for (const d of domain) out.push(d);
  return out;
}

/**
 * Decides (docs/access.md "Order of evaluation"): default deny; a matching deny whose condition
 * holds wins over every allow; else the most specific matching allow whose condition holds
 * (ties by name); allows that matched but whose conditions all failed deny as condition-false,
 * explained by the most specific of them. A condition that errors never grants: an erroring
 * allow counts as false, an erroring deny as true. Never throws.
 */
export function decideAccess(index: PolicyIndex, req: AccessRequest): AccessDecision {
  const bucket = index.servers.get(req.server);
  if (!bucket) return decision('unknown-server-workload');
  const id = parsedClient(req.client.spiffeId);
  if (!id) return decision('no-matching-policy'); // an unparsable ID is no workload's
  const candidates = matchingPolicies(bucket, id);
  if (candidates.length === 0) return decision('no-matching-policy');
  const d = decideAmong(candidates, req, id);
  return d.allowed && readsRequest(candidates) ? { ...d, requestDependent: true } : d;
}

/** Whether a matching policy's condition reads `request` (another request may decide otherwise). */
function readsRequest(candidates: readonly CompiledAccessPolicy[]): boolean {
  for (const c of candidates) if (c.condition?.readsRequest) return true;
  return false;
}

function decideAmong(
  candidates: readonly CompiledAccessPolicy[],
  req: AccessRequest,
  id: ParsedClient,
): AccessDecision {
  let input: BuiltInput | undefined;
  const holds = (c: CompiledAccessPolicy): ConditionResult => {
    if (c.broken !== undefined) return { holds: false, failed: 'condition', error: c.broken };
    if (!c.condition) return { holds: true };
    input ??= buildInput(req, id, inputNeedsOf(candidates));
    if (!input.ok) return { holds: false, failed: c.condition.source, error: input.error };
    return evaluateAccessCondition(c.condition, input.input);
  };

  for (const c of candidates) {
    if (c.policy.effect !== 'deny') continue;
    const r = holds(c);
    // An erroring deny condition counts as true: an error never opens access.
    if (r.holds || r.error !== undefined)
      return decision('denied-by-policy', c.policy.name, describeFailure(r));
  }
  let firstFailed: { c: CompiledAccessPolicy; r: ConditionResult } | undefined;
  for (const c of candidates) {
    if (c.policy.effect !== 'allow') continue;
    const r = holds(c);
    if (r.holds) return decision('allowed', c.policy.name, '', c.policy.credentialProvider);
    firstFailed ??= { c, r };
  }
  if (!firstFailed) return decision('no-matching-policy');
  return decision('condition-false', firstFailed.c.policy.name, describeFailure(firstFailed.r));
}

type BuiltInput = { ok: true; input: ConditionInput } | { ok: false; error: string };

/** What every matching policy's condition reads, so one input serves them all. */
function inputNeedsOf(candidates: readonly CompiledAccessPolicy[]): number {
  let needs = 0;
  for (const c of candidates) needs |= c.condition?.needs ?? 0;
  return needs;
}

/** Built once per decision, only when a matching policy has a condition. */
function buildInput(req: AccessRequest, id: ParsedClient, needs: number): BuiltInput {
  try {
    return { ok: true, input: conditionInput(req, id, needs) };
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}
