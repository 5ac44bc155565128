// matches() runs JS regular expressions, which backtrack, over untrusted input: only literal
// patterns that cannot backtrack catastrophically are accepted.
import { MAX_REGEX_LENGTH } from './limits.ts';

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
