// SPIFFE ID and trust-domain parsing, following spiffe/spiffe standards/SPIFFE-ID.md rule by rule.
// Every rejection names the rule that broke. Like go-spiffe we accept only the lowercase scheme and
// a lowercase trust domain (the canonical form), so two spellings never name one identity.
import { InvalidArgumentError } from './errors.ts';

export const MAX_SPIFFE_ID_BYTES = 2048;
export const MAX_TRUST_DOMAIN_BYTES = 255;
const SCHEME = 'spiffe://';

export class TrustDomain {
  readonly name: string;
  private constructor(name: string) {
    this.name = name;
  }

  /** Parses a bare trust-domain name ("example.org") or a trust-domain ID ("spiffe://example.org"). */
  static parse(text: string): TrustDomain {
    if (text.startsWith(SCHEME) || /^spiffe:/i.test(text)) {
      const id = SpiffeId.parse(text);
      if (id.path !== '') {
        throw new InvalidArgumentError(
          `invalid trust domain "${clip(text)}": a trust domain ID has no path`,
        );
      }
      return id.trustDomain;
    }
    checkTrustDomainName(text, text, 'trust domain');
    return new TrustDomain(text);
  }

  /** For SpiffeId.parse only: the name was already validated. */
  static fromValidated(name: string): TrustDomain {
    return new TrustDomain(name);
  }

  /** The trust domain's SPIFFE ID, e.g. spiffe://example.org. */
  get id(): string {
    return SCHEME + this.name;
  }

  equals(other: TrustDomain): boolean {
    return this.name === other.name;
  }

  toString(): string {
    return this.name;
  }
}

export class SpiffeId {
  readonly trustDomain: TrustDomain;
  /** "" for the trust-domain ID, otherwise "/seg/seg". */
  readonly path: string;
  private constructor(td: TrustDomain, path: string) {
    this.trustDomain = td;
    this.path = path;
  }

  static parse(text: string): SpiffeId {
    if (typeof text !== 'string' || text === '') {
      throw invalid(text, 'the ID is empty');
    }
    if (Buffer.byteLength(text, 'utf8') > MAX_SPIFFE_ID_BYTES) {
      throw invalid(text, `longer than ${MAX_SPIFFE_ID_BYTES} bytes`);
    }
    if (!text.startsWith(SCHEME)) {
      if (/^spiffe:\/\//i.test(text)) throw invalid(text, 'the scheme must be lowercase "spiffe"');
      if (/^[a-z][a-z0-9+.-]*:/i.test(text)) throw invalid(text, 'the scheme must be "spiffe"');
      throw invalid(text, 'it must start with "spiffe://"');
    }
    const rest = text.slice(SCHEME.length);
    // The authority ends at the first "/", "?" or "#" (RFC 3986), so that a query or fragment
    // right after the trust domain is reported as such, not as a bad trust-domain character.
    const end = rest.search(/[/?#]/);
    const authority = end === -1 ? rest : rest.slice(0, end);
    const path = end === -1 ? '' : rest.slice(end);
    if (authority === '') throw invalid(text, 'the trust domain is missing');
    if (authority.includes('@')) throw invalid(text, 'userinfo is not allowed');
    if (authority.startsWith('[')) throw invalid(text, 'an IPv6 trust domain is not allowed');
    if (authority.includes(':')) throw invalid(text, 'a port is not allowed');
    checkTrustDomainName(authority, text);
    if (path.includes('?')) throw invalid(text, 'a query is not allowed');
    if (path.includes('#')) throw invalid(text, 'a fragment is not allowed');
    if (path !== '') checkPath(path, text);
    return new SpiffeId(TrustDomain.fromValidated(authority), path);
  }

  /** Builds an ID in `td` from path segments, validating each. */
  static fromSegments(td: TrustDomain, ...segments: string[]): SpiffeId {
    return SpiffeId.parse(td.id + segments.map((s) => '/' + s).join(''));
  }

  get isTrustDomainId(): boolean {
    return this.path === '';
  }

  memberOf(td: TrustDomain): boolean {
    return this.trustDomain.equals(td);
  }

  equals(other: SpiffeId): boolean {
    return this.toString() === other.toString();
  }

  toString(): string {
    return SCHEME + this.trustDomain.name + this.path;
  }
}

/** Parses a SPIFFE ID that must name a workload (non-root path), e.g. for a leaf SVID. */
export function parseLeafId(text: string, what = 'SPIFFE ID'): SpiffeId {
  const id = SpiffeId.parse(text);
  if (id.isTrustDomainId) {
    throw new InvalidArgumentError(
      `invalid ${what} "${clip(text)}": a leaf SVID needs a path (the trust domain ID is reserved for CAs)`,
    );
  }
  return id;
}

function checkTrustDomainName(name: string, whole: string, label = 'SPIFFE ID'): void {
  const invalid = (w: string, rule: string) =>
    new InvalidArgumentError(`invalid ${label} "${clip(w)}": ${rule}`);
  if (name === '') throw invalid(whole, 'the trust domain is empty');
  if (Buffer.byteLength(name, 'utf8') > MAX_TRUST_DOMAIN_BYTES) {
    throw invalid(whole, `the trust domain is longer than ${MAX_TRUST_DOMAIN_BYTES} bytes`);
  }
  if (name.includes('%'))
    throw invalid(whole, 'percent-encoding is not allowed in the trust domain');
  if (/[A-Z]/.test(name)) throw invalid(whole, 'the trust domain must be lowercase');
  if (name.startsWith('[')) throw invalid(whole, 'an IPv6 trust domain is not allowed');
  const bad = /[^a-z0-9._-]/.exec(name);
  if (bad) {
    throw invalid(whole, `the trust domain has a character outside [a-z0-9._-]: "${bad[0]}"`);
  }
}

function checkPath(path: string, whole: string): void {
  if (path.endsWith('/')) throw invalid(whole, 'the path must not end with "/"');
  const segments = path.slice(1).split('/');
  for (const seg of segments) {
    if (seg === '') throw invalid(whole, 'the path has an empty segment');
    if (seg === '.' || seg === '..') throw invalid(whole, `the path has a "${seg}" segment`);
    if (seg.includes('%')) throw invalid(whole, 'percent-encoding is not allowed in the path');
    const bad = /[^a-zA-Z0-9._-]/.exec(seg);
    if (bad) {
      throw invalid(whole, `the path has a character outside [a-zA-Z0-9._-]: "${bad[0]}"`);
    }
  }
}

function invalid(text: unknown, rule: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid SPIFFE ID "${clip(String(text))}": ${rule}`);
}

function clip(s: string): string {
  return s.length > 120 ? s.slice(0, 117) + '...' : s;
}

/** SPIRE conventions kept for familiarity (../shared/reference/spiffe.md). */
export function serverId(td: TrustDomain): SpiffeId {
  return SpiffeId.fromSegments(td, 'spire', 'server');
}

export function agentId(td: TrustDomain, attestor: string, ...rest: string[]): SpiffeId {
  return SpiffeId.fromSegments(td, 'spire', 'agent', attestor, ...rest);
}

export function isAgentId(id: SpiffeId): boolean {
  return id.path.startsWith('/spire/agent/');
}
