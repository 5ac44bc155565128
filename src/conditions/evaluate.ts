// Runs compiled expressions. Pure and synchronous; a CEL runtime error is a result, never a
// throw, so a caller turns it into a denial that names the failing sub-expression.
import { celMessage, type CompiledExpression } from './compile.ts';

export type RunResult =
  { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: string };

/** Runs one expression; a CEL runtime error (no such key, bad types) comes back as its message. */
export function runExpression(
  expr: CompiledExpression,
  context: Record<string, unknown>,
): RunResult {
  try {
    return { ok: true, value: expr.run(context) };
  } catch (e) {
    return { ok: false, error: celMessage(e) };
  }
}

/** Why a condition that did not evaluate to true failed. */
export interface Explanation {
  /** The source of the first top-level `&&` operand that is not true; absent when unknown. */
  readonly operand?: string;
  readonly reason: string;
}

/** Names the first top-level `&&` operand that is not true (the whole condition decided). */
export function explainFalse(
  condition: CompiledExpression,
  conjuncts: readonly CompiledExpression[],
  context: Record<string, unknown>,
): Explanation {
  for (const op of conjuncts) {
    const r = runExpression(op, context);
    if (!r.ok) return { operand: op.source, reason: r.error };
    if (r.value !== true)
      return { operand: op.source, reason: `${op.source} is ${describeValue(r.value)}` };
  }
  return { reason: `${condition.source} is false` };
}

/** A short, safe rendering of an evaluated value for messages (strings cut at 60 characters). */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'absent';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? v.slice(0, 57) + '...' : v);
  if (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return 'a list';
  return `a ${typeof v === 'object' ? 'map' : typeof v}`;
}
