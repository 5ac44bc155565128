// Compiles a CEL expression once, at load time: parsed, bounded and type checked here, so
// evaluation never meets a syntax error or an unknown identifier.
//
// Cost bound. cel-js has structural limits (AST nodes, nesting depth, literal sizes) but no cost
// budget or timeout. CEL has no loops or recursion, so the work an expression does is bounded by
// its size times the size of its input — except for the two constructs that multiply:
// comprehensions nested inside comprehensions (n^k over a list) and cel.bind (a bound value
// doubled at every level). We refuse both (ast.ts), bound the AST (nodes, depth) and the input
// (sanitize.ts: JSON size, depth, element count), and keep regular expressions to literal
// patterns without nested quantifiers (JS regexps backtrack; inputs are attacker-controlled).
// Nothing else is needed: no timers, evaluation stays synchronous and pure.
import { Environment } from '@marcbachmann/cel-js';
import { InvalidArgumentError } from '../core/errors.ts';
import { checkAst, identifiersOf, topLevelConjuncts, type AstNode } from './ast.ts';
import { CEL_LIMITS, MAX_EXPRESSION_BYTES } from './limits.ts';

export interface CompiledExpression {
  /** Where it came from, e.g. "condition" or "attribute_mapping.subject". */
  readonly field: string;
  readonly source: string;
  /** Throws whatever cel-js throws; evaluate.ts turns that into a denial. */
  run(context: Record<string, unknown>): unknown;
}

export interface CompiledCondition {
  readonly expr: CompiledExpression;
  /** The checked result type: "bool", "string", "list<string>", "dyn", … */
  readonly type: string;
  /** The top-level `&&` operands, compiled alone, to name the failing one (explainFalse). */
  readonly conjuncts: readonly CompiledExpression[];
  /** The identifiers it names, from its AST (variables; comprehension variables too). */
  readonly reads: ReadonlySet<string>;
}

/** Builds a compile error; the caller decides how errors name their origin. */
export type CompileErrorFn = (field: string, message: string) => Error;

const defaultError: CompileErrorFn = (field, message) =>
  new InvalidArgumentError(`${field}: ${message}`);

/**
 * An environment declaring the variables expressions may use, each a map (untrusted input after
 * sanitizeInput). Environments are expensive to build (cel-js README): build one per use, once.
 */
export function conditionEnvironment(variables: readonly string[]): Environment {
  let env = new Environment({ limits: CEL_LIMITS, homogeneousAggregateLiterals: true });
  for (const v of variables) env = env.registerVariable(v, 'map');
  return env;
}

/** Parses, bounds and type checks one expression. Throws the error `err` builds. */
export function compileExpression(
  env: Environment,
  source: string,
  field: string,
  err: CompileErrorFn = defaultError,
): CompiledCondition {
  const c = compileOne(env, source, field, err);
  if (c.conjuncts.length < 2) return { expr: c.expr, type: c.type, conjuncts: [], reads: c.reads };
  const conjuncts = c.conjuncts.flatMap((src) => {
    try {
      return [compileOne(env, src, field, err).expr];
    } catch {
      return []; // Only used to explain a false result; the whole expression still decides.
    }
  });
  return {
    expr: c.expr,
    type: c.type,
    conjuncts: conjuncts.length > 1 ? conjuncts : [],
    reads: c.reads,
  };
}

function compileOne(env: Environment, source: string, field: string, err: CompileErrorFn) {
  if (Buffer.byteLength(source, 'utf8') > MAX_EXPRESSION_BYTES) {
    throw err(field, `CEL expression is longer than ${MAX_EXPRESSION_BYTES} bytes`);
  }
  let parsed: ReturnType<Environment['parse']>;
  try {
    parsed = env.parse(source);
  } catch (e) {
    throw err(field, celMessage(e));
  }
  const ast = parsed.ast as unknown as AstNode;
  const refused = checkAst(ast);
  if (refused) throw err(field, refused);
  const checked = env.check(source);
  if (!checked.valid) throw err(field, celMessage(checked.error));
  const expr: CompiledExpression = { field, source, run: (ctx) => parsed(ctx) as unknown };
  const reads = identifiersOf(ast);
  return { expr, type: checked.type ?? 'dyn', conjuncts: topLevelConjuncts(ast, source), reads };
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
