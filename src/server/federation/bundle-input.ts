// A foreign trust domain's bundle given by an operator: a SPIFFE bundle document (JSON) or PEM
// CA certificates. PEM carries no sequence, so it is stored with sequence 0: the first fetch from
// the bundle endpoint replaces it (an operator-set PEM bundle is a bootstrap, not a pin).
import type { Bundle } from '../../core/bundle.ts';
import { withX509Authority } from '../../core/bundle.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { TrustDomain } from '../../core/spiffe-id.ts';
import { DEFAULT_MAX_BUNDLE_BYTES, parseSpiffeBundle } from '../../crypto/bundle-format.ts';
import { parseCertificate } from '../../crypto/x509/certificate.ts';
import { pemToDers } from '../../crypto/x509/pem.ts';
import { checkAuthoritiesTrustDomain } from './fetch-bundle.ts';

export const MAX_BUNDLE_INPUT_BYTES = DEFAULT_MAX_BUNDLE_BYTES;
/** Refresh hint recorded for a PEM bundle (seconds); it has none of its own. */
const PEM_REFRESH_HINT = 300;

export function parseBundleInput(text: string, trustDomain: string, what = 'bundle'): Bundle {
  const td = TrustDomain.parse(trustDomain).name;
  if (Buffer.byteLength(text, 'utf8') > MAX_BUNDLE_INPUT_BYTES) {
    throw new InvalidArgumentError(`${what}: larger than ${MAX_BUNDLE_INPUT_BYTES} bytes`);
  }
  const trimmed = text.trim();
  if (trimmed === '') throw new InvalidArgumentError(`${what}: empty`);
  let bundle: Bundle;
  if (trimmed.startsWith('{')) {
    try {
      bundle = parseSpiffeBundle(trimmed, td);
    } catch (e) {
      throw new InvalidArgumentError(`${what}: ${(e as Error).message}`);
    }
  } else {
    let ders: Uint8Array[];
    try {
      ders = pemToDers(trimmed);
      ders.forEach((d, i) => parseCertificate(d, `certificate #${i + 1}`));
    } catch (e) {
      throw new InvalidArgumentError(`${what}: ${(e as Error).message}`);
    }
    if (ders.length === 0) {
      throw new InvalidArgumentError(
        `${what}: neither a SPIFFE bundle (JSON) nor PEM with a CERTIFICATE block`,
      );
    }
    bundle = ders.reduce<Bundle>((b, der) => withX509Authority(b, der), {
      trustDomain: td,
      x509Authorities: [],
      jwtAuthorities: [],
      sequence: 0,
      refreshHint: PEM_REFRESH_HINT,
    });
  }
  try {
    checkAuthoritiesTrustDomain(bundle);
  } catch (e) {
    throw new InvalidArgumentError(`${what}: ${(e as Error).message}`);
  }
  return bundle;
}
