// One bundle fetch for one relationship: GET the endpoint (authenticated per profile), parse the
// SPIFFE bundle for the relationship's trust domain, and refuse a document whose X.509
// authorities name another trust domain (a CA certificate's URI SAN is its trust domain ID).
import type { Bundle } from '../../core/bundle.ts';
import { FailedPreconditionError, InvalidArgumentError } from '../../core/errors.ts';
import type { FederationInput } from '../../core/federation.ts';
import { SpiffeId } from '../../core/spiffe-id.ts';
import { parseSpiffeBundle } from '../../crypto/bundle-format.ts';
import { parseCertificate, subjectAltNames } from '../../crypto/x509/certificate.ts';
import { type FetchLimits, defaultFetchLimits, getBundleDocument } from './endpoint-client.ts';

export interface FetchContext {
  /** The stored bundle of the relationship's trust domain (authenticates https_spiffe). */
  readonly current: Bundle | null;
  /** Extra CA certificates (PEM) for https_web, on top of the system roots. */
  readonly extraCaPem: readonly string[];
  readonly now: number;
  readonly limits?: FetchLimits;
}

export async function fetchFederatedBundle(rel: FederationInput, c: FetchContext): Promise<Bundle> {
  const limits = c.limits ?? defaultFetchLimits;
  if (rel.profile === 'https_spiffe' && (c.current?.x509Authorities.length ?? 0) === 0) {
    throw new FailedPreconditionError(
      `no X.509 bundle stored for "${rel.trustDomain}" to authenticate its https_spiffe endpoint: ` +
        'set one with `tessera bundle set` or --trust-bundle',
    );
  }
  const res = await getBundleDocument(
    rel.bundleEndpointUrl,
    rel.profile === 'https_web'
      ? { profile: 'https_web', extraCaPem: c.extraCaPem }
      : {
          profile: 'https_spiffe',
          endpointSpiffeId: rel.endpointSpiffeId,
          roots: c.current?.x509Authorities.map((a) => a.der) ?? [],
          now: c.now,
        },
    limits,
  );
  const bundle = parseSpiffeBundle(res.body, rel.trustDomain, limits.maxBytes);
  checkAuthoritiesTrustDomain(bundle);
  return bundle;
}

/** Every X.509 authority that names a trust domain (URI SAN) must name the bundle's own. */
export function checkAuthoritiesTrustDomain(bundle: Bundle): void {
  bundle.x509Authorities.forEach((a, i) => {
    const { uris } = subjectAltNames(parseCertificate(a.der, `X.509 authority #${i + 1}`));
    for (const uri of uris) {
      if (!uri.startsWith('spiffe:')) continue;
      let td: string;
      try {
        td = SpiffeId.parse(uri).trustDomain.name;
      } catch (e) {
        throw new InvalidArgumentError(
          `X.509 authority #${i + 1} has an invalid SPIFFE URI SAN: ${(e as Error).message}`,
        );
      }
      if (td !== bundle.trustDomain) {
        throw new InvalidArgumentError(
          `X.509 authority #${i + 1} belongs to trust domain "${td}", not "${bundle.trustDomain}"`,
        );
      }
    }
  });
}
