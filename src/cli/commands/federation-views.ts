// Federation relationships and federated bundles as the CLI shows them: the stable JSON shapes
// (docs/cli.md) and the table rows.
import type { FederationRelationship } from '../../client/api/federation.ts';
import type { Bundle } from '../../client/api/types.ts';
import { isoFromMillis, isoFromSeconds } from '../output.ts';

const isoOrNull = (ms: bigint): string | null => (ms === 0n ? null : isoFromMillis(ms));

export function relationshipJson(r: FederationRelationship) {
  return {
    trustDomain: r.trustDomain,
    bundleEndpointUrl: r.bundleEndpointUrl,
    profile: r.profile,
    endpointSpiffeId: r.endpointSpiffeId,
    source: r.source,
    createdAt: isoFromSeconds(r.createdAt),
    updatedAt: isoFromSeconds(r.updatedAt),
    lastFetchAt: isoOrNull(r.lastFetchAtMs),
    lastSuccessAt: isoOrNull(r.lastSuccessAtMs),
    lastError: r.lastError,
    nextAttemptAt: isoOrNull(r.nextAttemptAtMs),
    failures: r.failures,
    bundleSequence: r.bundleSequence < 0n ? null : Number(r.bundleSequence),
  };
}

export const relationshipHeaders = [
  'TRUST DOMAIN',
  'PROFILE',
  'BUNDLE ENDPOINT URL',
  'SOURCE',
  'SEQUENCE',
  'LAST SUCCESS',
  'FAILURES',
] as const;

export function relationshipRow(r: FederationRelationship): string[] {
  return [
    r.trustDomain,
    r.profile,
    r.bundleEndpointUrl,
    r.source,
    r.bundleSequence < 0n ? '' : String(r.bundleSequence),
    isoOrNull(r.lastSuccessAtMs) ?? 'never',
    String(r.failures),
  ];
}

export function relationshipFields(r: FederationRelationship): [string, string][] {
  const j = relationshipJson(r);
  return [
    ['Trust domain', j.trustDomain],
    ['Bundle endpoint URL', j.bundleEndpointUrl],
    ['Profile', j.profile],
    ['Endpoint SPIFFE ID', j.endpointSpiffeId],
    ['Source', j.source],
    ['Created at', j.createdAt ?? ''],
    ['Updated at', j.updatedAt ?? ''],
    ['Bundle sequence', j.bundleSequence === null ? 'no bundle' : String(j.bundleSequence)],
    ['Last fetch', j.lastFetchAt ?? 'never'],
    ['Last success', j.lastSuccessAt ?? 'never'],
    ['Last error', j.lastError],
    ['Failures', String(j.failures)],
    ['Next attempt', j.nextAttemptAt ?? 'now'],
  ];
}

export const federatedBundleHeaders = [
  'TRUST DOMAIN',
  'SEQUENCE',
  'X509 AUTHORITIES',
  'JWT AUTHORITIES',
  'REFRESH HINT',
] as const;

export function federatedBundleRow(b: Bundle): string[] {
  return [
    b.trustDomain,
    String(b.sequence),
    String(b.x509Authorities.length),
    String(b.jwtAuthorities.length),
    `${b.refreshHint}s`,
  ];
}
