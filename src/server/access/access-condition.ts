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
}

/** Compiles a condition; "" compiles to null (always true). Throws InvalidArgumentError. */
export function compileAccessCondition(source: string): AccessCondition | null {
  if (source.trim() === '') return null;
  const c = compileExpression(env, source, 'condition');
  if (c.type !== 'bool' && c.type !== 'dyn')
    throw new InvalidArgumentError(`condition: must evaluate to bool, not ${c.type}`);
  return { source, expr: c.expr, conjuncts: c.conjuncts };
}

/** What a condition sees; build once per decision, share across the policies evaluated. */
export type ConditionInput = Record<string, unknown>;

/**
 * Builds the variables of one request. Inputs come from the attested client (and, for `request`,
 * from the caller's traffic): bounded as src/conditions/sanitize.ts bounds any input, but built by
 * hand since every value is a flat string. Throws InvalidArgumentError when a bound is crossed.
 */
export function conditionInput(req: AccessRequest, spiffeId: SpiffeParts): ConditionInput {
  const budget = new Budget();
  const selectors: string[] = [];
  const byType = record<string[]>();
  for (const t of WORKLOAD_SELECTOR_TYPES) byType[t] = [];
  for (const s of req.client.selectors) {
    const text = budget.str(formatSelector(s));
    selectors.push(text);
    (byType[s.type] ??= []).push(s.value);
  }
  const attributes = record<string>();
  for (const k of Object.keys(req.client.attributes)) {
    attributes[budget.str(k)] = budget.str(req.client.attributes[k] ?? '');
  }
  const http = req.request;
  const d = new Date(req.at);
  if (Number.isNaN(d.getTime())) throw new InvalidArgumentError('at: not a valid time');
  const iso = d.toISOString();
  return {
    client: Object.assign(record(), {
      spiffe_id: spiffeId.text,
      trust_domain: spiffeId.trustDomain,
      path: spiffeId.path,
      selectors,
      selectors_by_type: byType,
      attributes,
    }),
    request: Object.assign(record(), {
      method: budget.str(http?.method ?? ''),
      path: budget.str(http?.path ?? ''),
      host: budget.str(http?.host ?? ''),
    }),
    now: Object.assign(record(), {
      unix: BigInt(Math.floor(req.at / 1000)),
      rfc3339: iso.slice(0, 19) + 'Z',
      date: iso.slice(0, 10),
      weekday: BigInt(d.getUTCDay()),
      hour: BigInt(d.getUTCHours()),
      minute: BigInt(d.getUTCMinutes()),
    }),
  };
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

class Budget {
  #bytes = 0;
  #values = 0;
  str(s: string): string {
    this.#bytes += s.length + 2;
    this.#values++;
    if (this.#bytes > MAX_INPUT_BYTES)
      throw new InvalidArgumentError(`client and request facts exceed ${MAX_INPUT_BYTES} bytes`);
    if (this.#values > MAX_INPUT_VALUES)
      throw new InvalidArgumentError(
        `client and request facts have more than ${MAX_INPUT_VALUES} values`,
      );
    return s;
  }
}

/** Null-prototype, so a "__proto__" attribute stays data. */
function record<T = unknown>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

function clip(s: string): string {
  return s.length > 120 ? s.slice(0, 117) + '...' : s;
}
