// Entry conditions (docs/posture.md): CEL over the workload's facts (workload-facts.ts), on the
// bounded engine of src/conditions. Compiled when an entry is created or updated (errors name
// the problem) and, once per entry revision, when it is evaluated at issuance.
import { InvalidArgumentError } from '../../core/errors.ts';
import type { Entry } from '../../core/entry.ts';
import {
  compileExpression,
  conditionEnvironment,
  type CompiledCondition,
} from '../../conditions/compile.ts';
import { explainFalse, runExpression } from '../../conditions/evaluate.ts';
import type { WorkloadFacts } from './workload-facts.ts';

const env = conditionEnvironment(['binary', 'kernel', 'image', 'node', 'posture']).registerVariable(
  'libraries',
  'list',
);

/** Compiles an entry condition; throws InvalidArgumentError naming the problem. */
export function compileEntryCondition(source: string): CompiledCondition {
  const c = compileExpression(env, source, 'condition');
  if (c.type !== 'bool' && c.type !== 'dyn')
    throw new InvalidArgumentError(`condition: must evaluate to bool, not ${c.type}`);
  return c;
}

export type EntryVerdict =
  { readonly allowed: true } | { readonly allowed: false; readonly reason: string };

const ALLOWED: EntryVerdict = Object.freeze({ allowed: true });

/** Compiled conditions per entry revision (entries are replaced, never mutated, on change). */
const compiled = new WeakMap<Entry, CompiledCondition | Error>();

/** Whether a workload with `facts` meets `entry`'s condition. Never throws. */
export function evaluateEntryCondition(entry: Entry, facts: WorkloadFacts): EntryVerdict {
  const source = entry.condition ?? '';
  if (source.trim() === '') return ALLOWED;
  let c = compiled.get(entry);
  if (c === undefined) {
    try {
      c = compileEntryCondition(source);
    } catch (e) {
      c = e as Error;
    }
    compiled.set(entry, c);
  }
  if (c instanceof Error) return { allowed: false, reason: `the entry's ${c.message}` };
  const input = facts as Record<string, unknown>;
  const r = runExpression(c.expr, input);
  if (r.ok && r.value === true) return ALLOWED;
  const why = explainFalse(c.expr, c.conjuncts, input);
  const failed = why.operand ?? source;
  const reason = r.ok
    ? `condition not met: ${failed}`
    : `condition not met: ${failed} (${r.error})`;
  return { allowed: false, reason: reason.slice(0, 512) };
}
