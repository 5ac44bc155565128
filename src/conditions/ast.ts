// Static checks over a parsed cel-js AST: depth, the constructs whose cost multiplies, regexp
// literals; and the top-level `&&` operands, kept to explain a false condition.
import { MAX_AST_DEPTH } from './limits.ts';
import { unsafeRegex } from './regex-safety.ts';

// cel-js AST: { op, args, start, end }, args a string, a node, or (nested) arrays of them.
export interface AstNode {
  op: string;
  args: unknown;
  start?: number;
  end?: number;
}

const COMPREHENSIONS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);

function isNode(v: unknown): v is AstNode {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    typeof (v as AstNode).op === 'string'
  );
}

/** The reason the AST is refused, or undefined. */
export function checkAst(root: AstNode): string | undefined {
  const visit = (v: unknown, depth: number, inComprehension: boolean): string | undefined => {
    if (depth > MAX_AST_DEPTH) return `expression nests deeper than ${MAX_AST_DEPTH} levels`;
    if (Array.isArray(v)) {
      for (const x of v) {
        const why = visit(x, depth, inComprehension);
        if (why) return why;
      }
      return undefined;
    }
    if (!isNode(v)) return undefined;
    const args = Array.isArray(v.args) ? (v.args as unknown[]) : [v.args];
    if (v.op === 'rcall' || v.op === 'call') {
      const name = args[0];
      const receiver = v.op === 'rcall' ? args[1] : undefined;
      const callArgs = v.op === 'rcall' ? args[2] : args[1];
      if (name === 'bind') return 'cel.bind is not allowed (it can grow values exponentially)';
      if (name === 'matches') {
        const why = checkRegexCall(v.op === 'rcall' ? callArgs : (callArgs as unknown[])?.slice(1));
        if (why) return why;
      }
      const comprehension =
        v.op === 'rcall' && typeof name === 'string' && COMPREHENSIONS.has(name);
      if (comprehension && inComprehension) {
        return `nested comprehension ${name}() is not allowed (its cost multiplies)`;
      }
      return (
        visit(receiver, depth + 1, inComprehension) ??
        visit(callArgs, depth + 1, inComprehension || comprehension)
      );
    }
    for (const a of args) {
      const why = visit(a, depth + 1, inComprehension);
      if (why) return why;
    }
    return undefined;
  };
  return visit(root, 0, false);
}

function checkRegexCall(args: unknown): string | undefined {
  const pattern = Array.isArray(args) ? (args as unknown[])[0] : undefined;
  if (!isNode(pattern) || pattern.op !== 'value' || typeof pattern.args !== 'string') {
    return 'matches() needs a string literal pattern';
  }
  const why = unsafeRegex(pattern.args);
  return why ? `matches() pattern refused: ${why}` : undefined;
}

/**
 * The identifiers the expression names (variables, not fields or strings). Conservative: a
 * comprehension's own variable counts too.
 */
export function identifiersOf(root: AstNode): Set<string> {
  const out = new Set<string>();
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (!isNode(v)) return;
    else if (v.op === 'id' && typeof v.args === 'string') out.add(v.args);
    else visit(v.args);
  };
  visit(root);
  return out;
}

/** The sources of the top-level `&&` operands, left to right. */
export function topLevelConjuncts(node: AstNode, source: string): string[] {
  if (node.op === '&&' && Array.isArray(node.args)) {
    return (node.args as unknown[]).flatMap((a) => (isNode(a) ? topLevelConjuncts(a, source) : []));
  }
  if (typeof node.start === 'number' && typeof node.end === 'number') {
    return [source.slice(node.start, node.end).trim()];
  }
  return [];
}
