// Federated bundles from the server. Untrusted input from the network, though from an
// authenticated server: the trust domain is checked and every key parsed before use.
import type { Bundle as DomainBundle } from '../../core/bundle.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { TrustDomain } from '../../core/spiffe-id.ts';
import { bundleToSpiffeJson } from '../../crypto/bundle-format.ts';
import { bundleFromWire } from '../../wire/bundle.ts';
import type { Bundle } from '../../../proto/gen/tessera/v1/types_pb.js';

/**
 * A federated bundle from the server: its trust domain must be a valid name other than the
 * agent's own (a federated bundle never replaces the own one). Throws InvalidArgumentError.
 */
export function federatedBundleFromWire(w: Bundle, ownTrustDomain: string): DomainBundle {
  const td = TrustDomain.parse(w.trustDomain).name;
  if (td !== w.trustDomain)
    throw new InvalidArgumentError(
      `federated bundle: "${w.trustDomain.slice(0, 80)}" is not a trust domain name`,
    );
  if (td === ownTrustDomain)
    throw new InvalidArgumentError('federated bundle: the own trust domain is not federated');
  const b = bundleFromWire(w);
  try {
    // Parses every CA certificate and JWT key once, so that nothing later trips over them.
    bundleToSpiffeJson(b);
  } catch (e) {
    throw new InvalidArgumentError(
      `federated bundle of "${td}": unusable key material (${(e as Error).message})`,
    );
  }
  return b;
}
