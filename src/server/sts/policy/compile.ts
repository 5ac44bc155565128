// Compiles a trust policy once, at load time: every CEL expression is parsed, bounded and type
// checked here, so evaluation never meets a syntax error or an unknown identifier.
//
// Cost bound. cel-js has structural limits (AST nodes, nesting depth, literal sizes) but no cost
// budget or timeout. CEL has no loops or recursion, so the work an expression does is bounded by
// its size times the size of its input — except for the two constructs that multiply:
// comprehensions nested inside comprehensions (n^k over a claim list) and cel.bind (a bound value
// doubled at every level). We refuse both, bound the AST (nodes, depth) and the claims
// (evaluate.ts: JSON size, depth, element count), and keep regular expressions to literal
// patterns without nested quantifiers (JS regexps backtrack; claims are attacker-controlled).
// Nothing else is needed: no timers, evaluation stays synchronous and pure.
import { Environment } from '@marcbachmann/cel-js';
import { parseDuration } from '../../../core/duration.ts';
import { InvalidArgumentError } from '../../../core/errors.ts';
import type { TrustDomain } from '../../../core/spiffe-id.ts';
import { compileSpiffeTemplate, type SpiffeTemplate } from './spiffe-template.ts';
import { parseTrustPolicy, type TrustPolicy } from './trust-policy.ts';

export const CEL_LIMITS = {
  maxAstNodes: 512,
  maxDepth: 24,
  maxListElements: 256,
  maxMapEntries: 64,
  maxCallArguments: 8,
} as const;
/** Our own check over the whole AST (cel-js's maxDepth does not count binary operators). */
export const MAX_AST_DEPTH = 32;
export const MAX_REGEX_LENGTH = 256;
export const DEFAULT_MAX_TTL_MS = 3_600_000;

const COMPREHENSIONS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);

// Environments are expensive to build (cel-js README), so build them once. The mapping sees only
// the claims; the condition also sees the mapped attributes (GCP's order: mapping, then condition).
const options = { limits: CEL_LIMITS, homogeneousAggregateLiterals: true } as const;
const mappingEnv = new Environment(options).registerVariable('assertion', 'map');
const conditionEnv = new Environment(options)
  .registerVariable('assertion', 'map')
  .registerVariable('attribute', 'map');

export interface CompiledExpression {
  /** Where it came from, e.g. "condition" or "attribute_mapping.subject". */
  readonly field: string;
  readonly source: string;
  /** Throws whatever cel-js throws; evaluate.ts turns that into a denial. */
  run(context: Record<string, unknown>): unknown;
}

export type PolicyOutput =
  | { readonly kind: 'spiffe_id'; readonly template: SpiffeTemplate }
  | {
      readonly kind: 'access_token';
      readonly audience: string;
      readonly scopes: readonly string[];
      /** Requests without a DPoP proof are refused. */
      readonly requireDpop: boolean;
    };

export interface CompiledTrustPolicy {
  readonly policy: TrustPolicy;
  readonly name: string;
  readonly issuer: string;
  readonly mapping: ReadonlyArray<{
    readonly attribute: string;
    readonly expr: CompiledExpression;
  }>;
  readonly condition: CompiledExpression;
  /** The top-level `&&` operands, compiled alone, to name the failing predicate on a denial. */
  readonly conjuncts: readonly CompiledExpression[];
  readonly output: PolicyOutput;
  readonly ttlMs: number;
}

export interface CompileOptions {
  readonly trustDomain: TrustDomain;
  /** A policy's ttl above this is refused (not clamped). Default 1h. */
  readonly maxTtlMs?: number;
}

/** Validates and compiles a policy. Throws InvalidArgumentError naming the field and the cause. */
export function compileTrustPolicy(input: unknown, opts: CompileOptions): CompiledTrustPolicy {
  const policy = parseTrustPolicy(input);
  const what = `trust policy "${policy.name}"`;
  const err = (field: string, msg: string) => new InvalidArgumentError(`${what}: ${field}: ${msg}`);

  const mapping = Object.entries(policy.attribute_mapping).map(([attribute, source]) => {
    const field = `attribute_mapping.${attribute}`;
    const expr = compileExpression(mappingEnv, source, field, err);
    const type = expr.type;
    const ok =
      attribute === 'groups'
        ? type === 'dyn' || type === 'list' || type === 'list<string>' || type === 'list<dyn>'
        : type === 'dyn' || type === 'string';
    if (!ok) {
      throw err(
        field,
        `must evaluate to ${attribute === 'groups' ? 'a list of strings' : 'a string'}, not ${type}`,
      );
    }
    return { attribute, expr: expr.compiled };
  });

  const condition = compileExpression(conditionEnv, policy.condition, 'condition', err);
  if (condition.type !== 'bool' && condition.type !== 'dyn') {
    throw err('condition', `must evaluate to bool, not ${condition.type}`);
  }
  const conjuncts = condition.conjuncts.flatMap((src) => {
    try {
      return [compileExpression(conditionEnv, src, 'condition', err).compiled];
    } catch {
      return []; // Only used to explain a denial; the whole condition still decides.
    }
  });

  let output: PolicyOutput;
  if (policy.spiffe_id !== undefined) {
    const template = compileSpiffeTemplate(
      policy.spiffe_id,
      opts.trustDomain,
      `${what}: spiffe_id`,
    );
    for (const a of template.attributes) {
      if (!(a in policy.attribute_mapping)) {
        throw err('spiffe_id', `placeholder {${a}} names no attribute in attribute_mapping`);
      }
      if (a === 'groups') throw err('spiffe_id', 'placeholder {groups} is a list, not a string');
    }
    output = { kind: 'spiffe_id', template };
  } else {
    const at = policy.access_token;
    if (!at) throw err('access_token', 'missing'); // unreachable: the schema needs one of them
    output = {
      kind: 'access_token',
      audience: at.audience,
      scopes: [...at.scopes],
      requireDpop: at.require_dpop,
    };
  }

  const ttlMs = parseDuration(policy.ttl, `${what}: ttl`);
  const maxTtlMs = opts.maxTtlMs ?? DEFAULT_MAX_TTL_MS;
  if (ttlMs > maxTtlMs) {
    throw err('ttl', `"${policy.ttl}" exceeds the maximum of ${maxTtlMs / 1000}s`);
  }

  return {
    policy,
    name: policy.name,
    issuer: policy.issuer,
    mapping,
    condition: condition.compiled,
    conjuncts: conjuncts.length > 1 ? conjuncts : [],
    output,
    ttlMs,
  };
}

interface Compiled {
  compiled: CompiledExpression;
  type: string;
  conjuncts: string[];
}

type ErrFn = (field: string, msg: string) => InvalidArgumentError;

function compileExpression(env: Environment, source: string, field: string, err: ErrFn): Compiled {
  let parsed: ReturnType<Environment['parse']>;
  try {
    parsed = env.parse(source);
  } catch (e) {
    throw err(field, celMessage(e));
  }
  checkAst(parsed.ast as unknown as AstNode, field, err);
  const checked = env.check(source);
  if (!checked.valid) throw err(field, celMessage(checked.error));
  const conjuncts: string[] = [];
  collectConjuncts(parsed.ast as unknown as AstNode, source, conjuncts);
  return {
    compiled: { field, source, run: (ctx) => parsed(ctx) as unknown },
    type: checked.type ?? 'dyn',
    conjuncts,
  };
}

/** The one-line summary of a cel-js error (its message adds a source excerpt on more lines). */
export function celMessage(e: unknown): string {
  if (e instanceof Error) {
    const summary = (e as { summary?: unknown }).summary;
    const text = typeof summary === 'string' && summary ? summary : e.message.split('\n')[0];
    return text ?? e.name;
  }
  return String(e);
}

// cel-js AST: { op, args, start, end }, args a string, a node, or (nested) arrays of them.
interface AstNode {
  op: string;
  args: unknown;
  start?: number;
  end?: number;
}

function isNode(v: unknown): v is AstNode {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    typeof (v as AstNode).op === 'string'
  );
}

function checkAst(root: AstNode, field: string, err: ErrFn): void {
  const visit = (v: unknown, depth: number, inComprehension: boolean): void => {
    if (depth > MAX_AST_DEPTH)
      throw err(field, `expression nests deeper than ${MAX_AST_DEPTH} levels`);
    if (Array.isArray(v)) {
      for (const x of v) visit(x, depth, inComprehension);
      return;
    }
    if (!isNode(v)) return;
    const args = Array.isArray(v.args) ? (v.args as unknown[]) : [v.args];
    if (v.op === 'rcall' || v.op === 'call') {
      const name = args[0];
      const receiver = v.op === 'rcall' ? args[1] : undefined;
      const callArgs = v.op === 'rcall' ? args[2] : args[1];
      if (name === 'bind')
        throw err(field, 'cel.bind is not allowed (it can grow values exponentially)');
      if (name === 'matches')
        checkRegexCall(v.op === 'rcall' ? callArgs : (callArgs as unknown[])?.slice(1), field, err);
      if (v.op === 'rcall' && typeof name === 'string' && COMPREHENSIONS.has(name)) {
        if (inComprehension) {
          throw err(field, `nested comprehension ${name}() is not allowed (its cost multiplies)`);
        }
        visit(receiver, depth + 1, inComprehension);
        visit(callArgs, depth + 1, true);
        return;
      }
      visit(receiver, depth + 1, inComprehension);
      visit(callArgs, depth + 1, inComprehension);
      return;
    }
    for (const a of args) visit(a, depth + 1, inComprehension);
  };
  visit(root, 0, false);
}

function checkRegexCall(args: unknown, field: string, err: ErrFn): void {
  const pattern = Array.isArray(args) ? args[0] : undefined;
  if (!isNode(pattern) || pattern.op !== 'value' || typeof pattern.args !== 'string') {
    throw err(field, 'matches() needs a string literal pattern');
  }
  const why = unsafeRegex(pattern.args);
  if (why) throw err(field, `matches() pattern refused: ${why}`);
}

/**
 * A conservative test for patterns that can backtrack catastrophically in a JS regexp engine:
 * back-references and a quantified group that itself holds a quantifier or an alternation
 * ("(a+)+", "(a|a)*"). It refuses some safe patterns; rewrite those without the nesting.
 */
export function unsafeRegex(p: string): string | undefined {
  if (p.length > MAX_REGEX_LENGTH) return `longer than ${MAX_REGEX_LENGTH} characters`;
  const stack: boolean[] = []; // per open group: holds a quantifier or "|"
  const isQuant = (c: string | undefined) => c === '*' || c === '+' || c === '?' || c === '{';
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') {
      if (/[1-9k]/.test(p[i + 1] ?? '')) return 'back-references are not allowed';
      i++;
      continue;
    }
    if (c === '[') {
      // Skip a character class; "]" right after "[" or "[^" is a literal.
      let j = i + 1;
      if (p[j] === '^') j++;
      if (p[j] === ']') j++;
      while (j < p.length && p[j] !== ']') j += p[j] === '\\' ? 2 : 1;
      i = j;
      continue;
    }
    if (c === '(') {
      stack.push(false);
      continue;
    }
    if (c === ')') {
      const risky = stack.pop() ?? false;
      // "?" after a group repeats nothing, so "(a+)?" is fine; "*", "+" and "{n,m}" repeat.
      const quantified = p[i + 1] === '*' || p[i + 1] === '+' || p[i + 1] === '{';
      if (risky && quantified) return 'a quantified group contains a quantifier or "|"';
      if ((risky || quantified) && stack.length > 0) stack[stack.length - 1] = true;
      continue;
    }
    if ((isQuant(c) || c === '|') && stack.length > 0) {
      // "(?:", "(?=" etc. start with "?", which is not a quantifier there.
      if (c === '?' && p[i - 1] === '(') continue;
      stack[stack.length - 1] = true;
    }
  }
  return undefined;
}

function collectConjuncts(node: AstNode, source: string, out: string[]): void {
  if (node.op === '&&' && Array.isArray(node.args)) {
    for (const a of node.args as unknown[]) if (isNode(a)) collectConjuncts(a, source, out);
    return;
  }
  if (typeof node.start === 'number' && typeof node.end === 'number') {
    out.push(source.slice(node.start, node.end).trim());
  }
}
