// Client patterns of access policies (AccessPolicy.client): which SPIFFE IDs a policy is about.
//
//   exact         spiffe://td/ns/prod/sa/web    that ID only
//   glob          spiffe://td/ns/*/sa/web       `*` is exactly one whole segment
//                 spiffe://td/ns/prod/**        a final `**` is one or more remaining segments
//   trust domain  spiffe://td                   every workload ID of the trust domain
//
// Wildcards are whole segments only: `web-*` is refused, so a pattern never depends on how names
// happen to be spelled inside a segment (a new `web-admin` workload would silently match). The
// trust domain is always literal. Patterns are parsed once (policy write, index build) and
// matched against already parsed IDs.
import { InvalidArgumentError } from '../../core/errors.ts';
import { MAX_SPIFFE_ID_BYTES, SpiffeId } from '../../core/spiffe-id.ts';

export type ClientPatternKind = 'exact' | 'glob' | 'trust-domain';

export interface ClientPattern {
  readonly kind: ClientPatternKind;
  /** As written (canonical: parsing accepts only canonical SPIFFE spellings). */
  readonly source: string;
  readonly trustDomain: string;
  /** Path segments; `*` and a final `**` are wildcards (globs only). Empty for trust domains. */
  readonly segments: readonly string[];
  /** Literal (non-wildcard) segments. */
  readonly literals: number;
  /** Whether the glob ends with `**`. */
  readonly rest: boolean;
}

const SCHEME = 'spiffe://';

/** Parses a client pattern. Throws InvalidArgumentError naming the rule, prefixed with "client: ". */
export function parseClientPattern(text: string): ClientPattern {
  const bad = (why: string) =>
    new InvalidArgumentError(`client: invalid pattern "${clip(text)}": ${why}`);
  if (typeof text !== 'string' || text === '') throw bad('the pattern is empty');
  if (Buffer.byteLength(text, 'utf8') > MAX_SPIFFE_ID_BYTES)
    throw bad(`longer than ${MAX_SPIFFE_ID_BYTES} bytes`);
  if (!text.includes('*')) {
    const id = parseId(text);
    const td = id.trustDomain.name;
    if (id.isTrustDomainId) return freeze('trust-domain', text, td, [], false);
    return freeze('exact', text, td, id.path.slice(1).split('/'), false);
  }
  if (!text.startsWith(SCHEME)) throw bad('it must start with "spiffe://"');
  const rest = text.slice(SCHEME.length);
  const slash = rest.indexOf('/');
  if (slash === -1 || rest.slice(0, slash).includes('*'))
    throw bad('the trust domain cannot have wildcards (use spiffe://TRUST_DOMAIN for all of it)');
  const segments = rest.slice(slash + 1).split('/');
  segments.forEach((seg, i) => {
    if (seg === '**' && i !== segments.length - 1) throw bad('"**" must be the last segment');
    if (seg !== '*' && seg !== '**' && seg.includes('*'))
      throw bad(`"${clip(seg)}": a wildcard must be a whole segment ("*" or a final "**")`);
  });
  // Validate everything else by the SPIFFE ID rules: wildcards stand in for a legal segment.
  const probe = SCHEME + rest.slice(0, slash) + '/' + segments.map(literalProbe).join('/');
  const id = parseId(probe);
  const hasRest = segments.at(-1) === '**';
  return freeze('glob', text, id.trustDomain.name, segments, hasRest);

  function parseId(s: string): SpiffeId {
    try {
      return SpiffeId.parse(s);
    } catch (e) {
      // SpiffeId's message quotes the (probe) ID; keep only the rule that broke.
      const msg = e instanceof Error ? e.message : String(e);
      throw bad(msg.replace(/^invalid SPIFFE ID "[^"]*": /, ''));
    }
  }
}

function literalProbe(seg: string): string {
  return seg === '*' || seg === '**' ? 'x' : seg;
}

function freeze(
  kind: ClientPatternKind,
  source: string,
  trustDomain: string,
  segments: string[],
  rest: boolean,
): ClientPattern {
  const literals = segments.filter((s) => s !== '*' && s !== '**').length;
  return Object.freeze({
    kind,
    source,
    trustDomain,
    segments: Object.freeze(segments),
    literals,
    rest,
  });
}

/**
 * Whether `id` matches. `idSegments` are the ID's path segments (no leading empty one) — the
 * caller splits once per decision, not once per policy.
 */
export function matchesClient(
  p: ClientPattern,
  trustDomain: string,
  idSegments: readonly string[],
): boolean {
  if (p.trustDomain !== trustDomain) return false;
  switch (p.kind) {
    case 'trust-domain':
      return idSegments.length > 0;
    case 'exact':
      return sameSegments(p.segments, idSegments);
    case 'glob':
      return matchGlob(p, idSegments);
  }
}

function sameSegments(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function matchGlob(p: ClientPattern, ids: readonly string[]): boolean {
  const segs = p.segments;
  const fixed = p.rest ? segs.length - 1 : segs.length;
  // `**` needs at least one remaining segment; without it the lengths must agree.
  if (p.rest ? ids.length < segs.length : ids.length !== segs.length) return false;
  for (let i = 0; i < fixed; i++) {
    const s = segs[i];
    if (s !== '*' && s !== ids[i]) return false;
  }
  return true;
}

/** Convenience for one-off checks: parses `spiffeId` and matches. Invalid IDs match nothing. */
export function matchesSpiffeId(p: ClientPattern, spiffeId: string): boolean {
  let id: SpiffeId;
  try {
    id = SpiffeId.parse(spiffeId);
  } catch {
    return false;
  }
  return matchesClient(p, id.trustDomain.name, id.path === '' ? [] : id.path.slice(1).split('/'));
}

const KIND_RANK: Readonly<Record<ClientPatternKind, number>> = {
  exact: 0,
  glob: 1,
  'trust-domain': 2,
};

/**
 * Specificity order (docs/access.md "Order of evaluation"): negative when `a` is more specific.
 * exact > glob > trust domain; among globs more literal segments first, then without `**` before
 * with, then more segments. Equal patterns compare 0 (the caller breaks ties by policy name).
 */
export function compareSpecificity(a: ClientPattern, b: ClientPattern): number {
  return (
    KIND_RANK[a.kind] - KIND_RANK[b.kind] ||
    b.literals - a.literals ||
    Number(a.rest) - Number(b.rest) ||
    b.segments.length - a.segments.length
  );
}

function clip(s: string): string {
  return typeof s === 'string' && s.length > 80 ? s.slice(0, 77) + '...' : String(s);
}
