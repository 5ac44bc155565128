// Selectors are `type:value` facts about a node or workload (e.g. `unix:uid:1000`). The type is
// before the first colon; the value may contain colons.
import { InvalidArgumentError } from './errors.ts';

export interface Selector {
  readonly type: string;
  readonly value: string;
}

export const MAX_SELECTOR_BYTES = 1024;
const TYPE_RE = /^[a-z0-9_][a-z0-9_.-]{0,63}$/;

export function parseSelector(text: string): Selector {
  if (typeof text !== 'string' || text === '') {
    throw new InvalidArgumentError('invalid selector "": expected TYPE:VALUE');
  }
  if (Buffer.byteLength(text, 'utf8') > MAX_SELECTOR_BYTES) {
    throw new InvalidArgumentError(`invalid selector: longer than ${MAX_SELECTOR_BYTES} bytes`);
  }
  const i = text.indexOf(':');
  if (i <= 0) {
    throw new InvalidArgumentError(`invalid selector "${text}": expected TYPE:VALUE`);
  }
  const type = text.slice(0, i);
  const value = text.slice(i + 1);
  if (!TYPE_RE.test(type)) {
    throw new InvalidArgumentError(
      `invalid selector "${text}": type "${type}" must be lowercase [a-z0-9_.-]`,
    );
  }
  if (value === '') throw new InvalidArgumentError(`invalid selector "${text}": empty value`);
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw new InvalidArgumentError(`invalid selector "${type}:...": value has control characters`);
  }
  return { type, value };
}

export function formatSelector(s: Selector): string {
  return `${s.type}:${s.value}`;
}

/** Sorted, de-duplicated canonical form; the basis of equality between selector sets. */
export function canonicalSelectors(selectors: readonly Selector[]): Selector[] {
  const seen = new Map<string, Selector>();
  for (const s of selectors) seen.set(formatSelector(s), s);
  return [...seen.keys()].sort().map((k) => seen.get(k) as Selector);
}

export function selectorSetKey(selectors: readonly Selector[]): string {
  return canonicalSelectors(selectors).map(formatSelector).join('\n');
}

/** True when every selector in `subset` is in `superset`. */
export function isSubset(subset: readonly Selector[], superset: ReadonlySet<string>): boolean {
  for (const s of subset) if (!superset.has(formatSelector(s))) return false;
  return true;
}

/**
 * Selector types the built-in workload attestors produce (src/plugins/workload-attestors). Kept
 * here so that the CLI, which may not import plugins, can warn about an entry that no attestor
 * can match; the workload attestor catalog's test fails when the two lists differ.
 */
export const WORKLOAD_SELECTOR_TYPES: readonly string[] = Object.freeze(['unix', 'docker', 'k8s']);

/**
 * Selector types the built-in node attestors give an agent, which node alias entries (parent =
 * the server ID) match: x509pop (join_token gives none). The node attestor catalog's test checks it.
 */
export const NODE_SELECTOR_TYPES: readonly string[] = Object.freeze([
  'x509pop',
  'aws_iid',
  'gcp_iit',
  'azure_msi',
  'k8s_psat',
  'tpm',
]);
