// What an entry discloses in its workload's signed identity document (docs/identity-document.md):
// a list of attribute paths, named as entry conditions name the workload's facts
// (server/posture/workload-facts.ts). Only these land in the document's `tessera.attributes`
// claim, nested as the path says (`image.digest` → {"image": {"digest": …}}); nothing else does.
import { InvalidArgumentError } from './errors.ts';

/** The claim the disclosed attributes live under: {"tessera": {"attributes": {…}}}. */
export const DOCUMENT_CLAIM = 'tessera';

/** Paths that name a fact, or a whole group of facts. */
const KNOWN_PATHS: ReadonlySet<string> = new Set([
  'binary',
  'binary.sha256',
  'libraries',
  'kernel',
  'kernel.release',
  'image',
  'image.digest',
  'node',
  'node.id',
  'node.attestor',
  'node.selectors',
  'node.tags',
  'posture',
  'posture.scanned',
  'posture.critical',
  'posture.high',
  'posture.medium',
  'posture.low',
  'posture.unknown',
  'posture.fixable',
  'posture.scanner',
  'posture.scanned_at',
  'posture.import_version',
]);

/** `node.<key>`: a node selector's key (`node.account`, `node.region`, `node.zone`, …). */
const NODE_KEY = /^node\.[a-z][a-z0-9_]{0,63}$/;

export const DISCLOSE_LIMITS = { paths: 32 } as const;

export function isDisclosablePath(path: string): boolean {
  return KNOWN_PATHS.has(path) || NODE_KEY.test(path);
}

/**
 * The entry's `disclose` list, checked: known paths only, at most 32, duplicates dropped, in the
 * order given. Throws InvalidArgumentError naming the first unknown path.
 */
export function validateDisclose(input: readonly unknown[] | undefined): string[] {
  if (input === undefined) return [];
  if (!Array.isArray(input)) throw new InvalidArgumentError('disclose: must be a list of paths');
  const out: string[] = [];
  for (const p of input) {
    if (typeof p !== 'string' || !isDisclosablePath(p)) {
      const shown = typeof p === 'string' ? p.slice(0, 64).replace(/[^\x20-\x7e]/g, '?') : '?';
      throw new InvalidArgumentError(
        `disclose: unknown attribute "${shown}" (known: binary.sha256, libraries, kernel.release, ` +
          'image.digest, node.id, node.attestor, node.selectors, node.tags, node.<key>, ' +
          'posture, posture.<field>, or a group: binary, kernel, image, node)',
      );
    }
    if (!out.includes(p)) out.push(p);
  }
  if (out.length > DISCLOSE_LIMITS.paths)
    throw new InvalidArgumentError(`disclose: at most ${DISCLOSE_LIMITS.paths} paths`);
  return out;
}

/** JSON-safe copy: bigint counts become numbers, null-prototype maps plain objects. */
function jsonValue(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(jsonValue);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = jsonValue(x);
    return out;
  }
  return v;
}

/**
 * The disclosed part of `facts`, nested by path. A path the workload has no value for (no
 * `node.region` on a join-token node) is left out, never filled in.
 */
export function disclosedAttributes(
  facts: Readonly<Record<string, unknown>>,
  paths: readonly string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const path of paths) {
    const [group, leaf] = path.split('.', 2) as [string, string | undefined];
    if (!Object.hasOwn(facts, group)) continue;
    const g = facts[group];
    if (leaf === undefined) {
      out[group] = jsonValue(g);
      continue;
    }
    if (g === null || typeof g !== 'object' || !Object.hasOwn(g, leaf)) continue;
    const target = (out[group] ?? {}) as Record<string, unknown>;
    target[leaf] = jsonValue((g as Record<string, unknown>)[leaf]);
    out[group] = target;
  }
  return out;
}
