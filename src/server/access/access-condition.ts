// The CEL environment of access-policy conditions (docs/access.md "Conditions"), on the bounded
// engine of src/conditions: compiled once with its size and cost limits, evaluated over inputs
// built here within a budget, a false result explained by its failing top-level `&&` operand.
//
//   client.spiffe_id, client.trust_domain, client.path           strings
//   client.selectors                                             list of "type:value"
//   client.selectors_by_type["unix"]                             list of values of that type
//                                                                ("uid:1000"); every built-in
//                                                                type is present, maybe empty
//   client.attributes["unix.uid"]                                map string → string
//   client.binary, client.libraries, client.kernel, client.image, the workload's facts
//   client.node, client.posture                                  (docs/posture.md "Attributes")
//   request.method, request.path, request.host                   strings ("" when not HTTP)
//   now.unix (int seconds), now.rfc3339, now.date ("YYYY-MM-DD"),
//   now.weekday (0 = Sunday … 6), now.hour, now.minute           UTC, from AccessRequest.at
//
// Deterministic: `now` is the request's `at`, never the wall clock, so a decision replays
// exactly (what-if, `access-policy test --at`).
import { InvalidArgumentError } from '../../core/errors.ts';
import type { AccessRequest } from '../../core/access.ts';
import { formatSelector, WORKLOAD_SELECTOR_TYPES } from '../../core/selector.ts';
import {
  compileExpression,
  conditionEnvironment,
  type CompiledExpression,
} from '../../conditions/compile.ts';
import { explainFalse, runExpression } from '../../conditions/evaluate.ts';
import { MAX_INPUT_BYTES, MAX_INPUT_VALUES } from '../../conditions/limits.ts';

const env = conditionEnvironment(['client', 'request', 'now']);

export interface AccessCondition {
  readonly source: string;
  readonly expr: CompiledExpression;
  readonly conjuncts: readonly CompiledExpression[];
  /** The client lists and maps it reads (INPUT_* bits); the rest is not built for it. */
  readonly needs: number;
  /** It names `request` (by its AST): the decision may differ per HTTP request. */
  readonly readsRequest: boolean;
}

/** Parts of `client` that cost something to build, built only for conditions that name them. */
export const INPUT_SELECTORS = 1;
export const INPUT_SELECTORS_BY_TYPE = 2;
export const INPUT_ATTRIBUTES = 4;
export const INPUT_FACTS = 8;
export const INPUT_ALL = 15;

/** The workload facts (server/posture/workload-facts.ts) a condition may name under `client`. */
const FACT_NAMES = ['binary', 'libraries', 'kernel', 'image', 'node', 'posture'] as const;

/**
 * Which parts a condition reads, by the names in its source. Conservative: a name anywhere (a
 * string literal included) builds the part. A condition that reaches a part without naming it
 * (`client["attri" + "butes"]`) finds no such key: an error, which never grants (decideAccess).
 */
export function inputNeeds(source: string): number {
  return (
    (/\bselectors\b/.test(source) ? INPUT_SELECTORS : 0) |
    (/\bselectors_by_type\b/.test(source) ? INPUT_SELECTORS_BY_TYPE : 0) |
    (/\battributes\b/.test(source) ? INPUT_ATTRIBUTES : 0) |
    (/\b(binary|libraries|kernel|image|node|posture)\b/.test(source) ? INPUT_FACTS : 0)
  );
}

/** Compiles a condition; "" compiles to null (always true). Throws InvalidArgumentError. */
export function compileAccessCondition(source: string): AccessCondition | null {
  if (source.trim() === '') return null;
  const c = compileExpression(env, source, 'condition');
  if (c.type !== 'bool' && c.type !== 'dyn')
    throw new InvalidArgumentError(`condition: must evaluate to bool, not ${c.type}`);
  return {
    source,
    expr: c.expr,
    conjuncts: c.conjuncts,
    needs: inputNeeds(source),
    readsRequest: c.reads.has('request'),
  };
}

/** What a condition sees; build once per decision, share across the policies evaluated. */
export type ConditionInput = Record<string, unknown>;

/**
 * Builds the variables of one request — of `needs` (INPUT_* bits), the parts the conditions to
 * evaluate read. Inputs come from the attested client (and, for `request`, from the caller's
 * traffic) and are bounded as src/conditions/sanitize.ts bounds any input, checked up front in
 * one pass over the lengths. Every value is a flat string, so the variables are built by hand
 * rather than copied: plain objects, which cel-js reads through own properties only (hasOwn), so
 * a "__proto__" key or an inherited property is never seen. Throws InvalidArgumentError when a
 * bound is crossed.
 */
export function conditionInput(
  req: AccessRequest,
  id: SpiffeParts,
  needs: number = INPUT_ALL,
): ConditionInput {
  checkBudget(req);
  const c = req.client;
  const client: Record<string, unknown> = {
    spiffe_id: id.text,
    trust_domain: id.trustDomain,
    path: id.path,
  };
  if (needs & INPUT_SELECTORS) client['selectors'] = c.selectors.map(formatSelector);
  if (needs & INPUT_SELECTORS_BY_TYPE) client['selectors_by_type'] = selectorsByType(c.selectors);
  if (needs & INPUT_ATTRIBUTES) client['attributes'] = c.attributes;
  // Absent facts (a replayed request from before posture) stay absent: a condition naming them
  // meets "no such key", an error, which never grants.
  if (needs & INPUT_FACTS && c.facts)
    for (const k of FACT_NAMES) if (Object.hasOwn(c.facts, k)) client[k] = c.facts[k];
  const http = req.request;
  return {
    client,
    request: { method: http?.method ?? '', path: http?.path ?? '', host: http?.host ?? '' },
    now: nowFacts(req.at),
  };
}

const NO_VALUES: readonly string[] = Object.freeze([]);

function selectorsByType(
  selectors: AccessRequest['client']['selectors'],
): Map<string, readonly string[]> {
  const byType = new Map<string, string[]>();
  for (const s of selectors) {
    const list = byType.get(s.type);
    if (list) list.push(s.value);
    else byType.set(s.type, [s.value]);
  }
  const out = byType as Map<string, readonly string[]>;
  for (const t of WORKLOAD_SELECTOR_TYPES) if (!out.has(t)) out.set(t, NO_VALUES);
  return out;
}

function checkBudget(req: AccessRequest): void {
  const c = req.client;
  let bytes = 0;
  let values = 0;
  for (const s of c.selectors) {
    bytes += s.type.length + s.value.length + 3;
    values++;
  }
  for (const k in c.attributes) {
    bytes += k.length + (c.attributes[k]?.length ?? 0) + 4;
    values += 2;
  }
  const h = req.request;
  if (h) bytes += h.method.length + h.path.length + h.host.length + 6;
  if (bytes > MAX_INPUT_BYTES)
    throw new InvalidArgumentError(`client and request facts exceed ${MAX_INPUT_BYTES} bytes`);
  if (values > MAX_INPUT_VALUES)
    throw new InvalidArgumentError(
      `client and request facts have more than ${MAX_INPUT_VALUES} values`,
    );
}

/** `now` of one second, shared by every decision in that second (frozen: nothing changes it). */
let lastNow: { second: number; facts: Readonly<Record<string, unknown>> } | undefined;

function nowFacts(at: number): Readonly<Record<string, unknown>> {
  if (!Number.isFinite(at)) throw new InvalidArgumentError('at: not a valid time');
  const second = Math.floor(at / 1000);
  if (lastNow?.second === second) return lastNow.facts;
  const days = Math.floor(second / 86_400);
  const ofDay = second - days * 86_400;
  const date = new Date(second * 1000);
  if (Number.isNaN(date.getTime())) throw new InvalidArgumentError('at: not a valid time');
  const iso = date.toISOString();
  const facts = Object.freeze({
    unix: BigInt(second),
    rfc3339: iso.slice(0, 19) + 'Z',
    date: iso.slice(0, 10),
    // 1970-01-01 was a Thursday (4).
    weekday: BigInt((((days + 4) % 7) + 7) % 7),
    hour: BigInt(Math.floor(ofDay / 3600)),
    minute: BigInt(Math.floor((ofDay % 3600) / 60)),
  });
  lastNow = { second, facts };
  return facts;
}

export interface SpiffeParts {
  readonly text: string;
  readonly trustDomain: string;
  /** "/a/b". */
  readonly path: string;
}

export type ConditionResult =
  | { readonly holds: true }
  /** `failed`: the failing top-level operand (or the whole condition); `error`: a CEL runtime error. */
  | { readonly holds: false; readonly failed: string; readonly error?: string };

/** Evaluates; a runtime error or a non-bool result is "does not hold", explained. Never throws. */
export function evaluateAccessCondition(
  c: AccessCondition,
  input: ConditionInput,
): ConditionResult {
  const r = runExpression(c.expr, input);
  if (r.ok && r.value === true) return { holds: true };
  const why = explainFalse(c.expr, c.conjuncts, input);
  const failed = why.operand ?? c.source;
  if (!r.ok) return { holds: false, failed, error: r.error };
  if (typeof r.value !== 'boolean') return { holds: false, failed, error: 'not a bool' };
  return { holds: false, failed };
}

/** The explanation as AccessDecision.failedCondition carries it: the expression, never a value. */
export function describeFailure(r: ConditionResult): string {
  if (r.holds) return '';
  return r.error ? `${r.failed} (error: ${clip(r.error)})` : r.failed;
}

function clip(s: string): string {
  return s.length > 120 ? s.slice(0, 117) + '...' : s;
}
