// Registration entries: which workloads (by selectors, under a parent) get which SPIFFE ID.
// Validation happens here once, at the edge of the domain, with errors naming the field.
import { InvalidArgumentError } from './errors.ts';
import { SpiffeId, TrustDomain, parseLeafId } from './spiffe-id.ts';
import { type Selector, canonicalSelectors, parseSelector } from './selector.ts';
import { validateDisclose } from './disclosure.ts';

export interface Entry {
  readonly id: string;
  readonly spiffeId: string;
  readonly parentId: string;
  /** Canonical (sorted, unique). */
  readonly selectors: readonly Selector[];
  /** Seconds; 0 means the server default. */
  readonly x509SvidTtl: number;
  /** Seconds; 0 means the server default. */
  readonly jwtSvidTtl: number;
  readonly dnsNames: readonly string[];
  /** Trust-domain names. */
  readonly federatesWith: readonly string[];
  readonly admin: boolean;
  readonly downstream: boolean;
  /** Epoch ms, or null for no expiry. */
  readonly expiresAt: number | null;
  readonly hint: string;
  /**
   * CEL over the workload's attributes (docs/posture.md); absent or "" = none. Compiled and
   * checked by the server (server/posture/entry-condition.ts); core only bounds its size.
   */
  readonly condition?: string;
  /**
   * Attribute paths disclosed in the workload's signed identity document (core/disclosure.ts);
   * absent or empty = none.
   */
  readonly disclose?: readonly string[];
  readonly revision: number;
  /** Epoch ms. */
  readonly createdAt: number;
}

/** What a caller supplies; untrusted until validateEntryInput has run. */
export interface EntryInput {
  spiffeId: string;
  parentId: string;
  selectors: readonly string[];
  x509SvidTtl?: number;
  jwtSvidTtl?: number;
  dnsNames?: readonly string[];
  federatesWith?: readonly string[];
  admin?: boolean;
  downstream?: boolean;
  expiresAt?: number | null;
  hint?: string;
  condition?: string;
  disclose?: readonly string[];
}

export type ValidEntryFields = Omit<Entry, 'id' | 'revision' | 'createdAt'>;

export const ENTRY_LIMITS = {
  selectors: 64,
  dnsNames: 32,
  dnsNameBytes: 253,
  federatesWith: 32,
  hintBytes: 1024,
  conditionBytes: 4096,
  maxTtlSeconds: 10 * 365 * 86400,
} as const;

export function validateEntryInput(input: EntryInput, td: TrustDomain): ValidEntryFields {
  const spiffeId = field('spiffe_id', () => parseLeafId(input.spiffeId));
  if (!spiffeId.memberOf(td)) {
    throw new InvalidArgumentError(`spiffe_id: "${spiffeId}" is not in trust domain "${td.name}"`);
  }
  if (spiffeId.path.startsWith('/spire/')) {
    throw new InvalidArgumentError(
      `spiffe_id: paths under /spire/ are reserved for the server and agents`,
    );
  }
  const parentId = field('parent_id', () => SpiffeId.parse(input.parentId));
  if (!parentId.memberOf(td)) {
    throw new InvalidArgumentError(`parent_id: "${parentId}" is not in trust domain "${td.name}"`);
  }
  if (!Array.isArray(input.selectors) || input.selectors.length === 0) {
    throw new InvalidArgumentError('selectors: at least one selector is required');
  }
  if (input.selectors.length > ENTRY_LIMITS.selectors) {
    throw new InvalidArgumentError(`selectors: at most ${ENTRY_LIMITS.selectors} selectors`);
  }
  const selectors = canonicalSelectors(
    input.selectors.map((s) => field('selectors', () => parseSelector(s))),
  );
  const x509SvidTtl = ttl('x509_svid_ttl', input.x509SvidTtl);
  const jwtSvidTtl = ttl('jwt_svid_ttl', input.jwtSvidTtl);
  const dnsNames = [...new Set(input.dnsNames ?? [])];
  if (dnsNames.length > ENTRY_LIMITS.dnsNames) {
    throw new InvalidArgumentError(`dns_names: at most ${ENTRY_LIMITS.dnsNames} names`);
  }
  for (const name of dnsNames) checkDnsName(name);
  const federatesWith = [...new Set(input.federatesWith ?? [])].map(
    (t) => field('federates_with', () => TrustDomain.parse(t)).name,
  );
  if (federatesWith.length > ENTRY_LIMITS.federatesWith) {
    throw new InvalidArgumentError(
      `federates_with: at most ${ENTRY_LIMITS.federatesWith} trust domains`,
    );
  }
  if (federatesWith.includes(td.name)) {
    throw new InvalidArgumentError(
      `federates_with: "${td.name}" is this server's own trust domain`,
    );
  }
  const hint = input.hint ?? '';
  if (typeof hint !== 'string' || Buffer.byteLength(hint, 'utf8') > ENTRY_LIMITS.hintBytes) {
    throw new InvalidArgumentError(`hint: at most ${ENTRY_LIMITS.hintBytes} bytes`);
  }
  const condition = input.condition ?? '';
  if (
    typeof condition !== 'string' ||
    Buffer.byteLength(condition, 'utf8') > ENTRY_LIMITS.conditionBytes
  ) {
    throw new InvalidArgumentError(`condition: at most ${ENTRY_LIMITS.conditionBytes} bytes`);
  }
  const disclose = validateDisclose(input.disclose);
  const expiresAt = input.expiresAt ?? null;
  if (expiresAt !== null && (!Number.isSafeInteger(expiresAt) || expiresAt <= 0)) {
    throw new InvalidArgumentError('expires_at: must be a positive timestamp');
  }
  return {
    spiffeId: spiffeId.toString(),
    parentId: parentId.toString(),
    selectors,
    x509SvidTtl,
    jwtSvidTtl,
    dnsNames,
    federatesWith,
    admin: input.admin === true,
    downstream: input.downstream === true,
    expiresAt,
    hint,
    ...(condition.trim() === '' ? {} : { condition }),
    ...(disclose.length === 0 ? {} : { disclose }),
  };
}

function ttl(name: string, value: number | undefined): number {
  if (value === undefined) return 0;
  if (!Number.isSafeInteger(value) || value < 0 || value > ENTRY_LIMITS.maxTtlSeconds) {
    throw new InvalidArgumentError(
      `${name}: must be a whole number of seconds between 0 and ${ENTRY_LIMITS.maxTtlSeconds}`,
    );
  }
  return value;
}

const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

export function checkDnsName(name: string): void {
  const bare = name.startsWith('*.') ? name.slice(2) : name;
  if (
    typeof name !== 'string' ||
    name.length === 0 ||
    name.length > ENTRY_LIMITS.dnsNameBytes ||
    !bare.split('.').every((l) => DNS_LABEL.test(l))
  ) {
    throw new InvalidArgumentError(
      `dns_names: "${String(name).slice(0, 80)}" is not a valid DNS name`,
    );
  }
}

function field<T>(name: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof InvalidArgumentError) throw new InvalidArgumentError(`${name}: ${e.message}`);
    throw e;
  }
}

/** Two entries are duplicates when spiffe_id, parent_id and the selector set are equal. */
export function entryIdentityKey(e: Pick<Entry, 'spiffeId' | 'parentId' | 'selectors'>): string {
  return `${e.spiffeId}\n${e.parentId}\n${canonicalSelectors(e.selectors)
    .map((s) => `${s.type}:${s.value}`)
    .join('\n')}`;
}

export function isExpired(e: Pick<Entry, 'expiresAt'>, now: number): boolean {
  return e.expiresAt !== null && e.expiresAt <= now;
}
