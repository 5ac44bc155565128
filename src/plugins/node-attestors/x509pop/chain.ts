// Path validation for x509pop agent certificates: the chain must lead to one of the configured
// CA certificates, every certificate must be inside its validity window, and each issuer must
// be a CA.
import type { X509Certificate } from 'node:crypto';
import { PermissionDeniedError } from '../../../core/errors.ts';

export function verifyChainToRoots(
  chain: readonly X509Certificate[],
  roots: readonly X509Certificate[],
  now: number,
): X509Certificate {
  const leaf = chain[0];
  if (!leaf) throw new PermissionDeniedError('x509pop: no certificate presented');
  const all = [...chain];
  for (const c of all) checkValidity(c, now);
  let current = leaf;
  for (let depth = 0; depth < 8; depth++) {
    const root = roots.find((r) => current.checkIssued(r) && current.verify(r.publicKey));
    if (root) {
      checkValidity(root, now);
      return root;
    }
    const next = all.find(
      (c) => c !== current && c.ca && current.checkIssued(c) && current.verify(c.publicKey),
    );
    if (!next) break;
    current = next;
  }
  throw new PermissionDeniedError('x509pop: certificate does not chain to a trusted CA');
}

function checkValidity(c: X509Certificate, now: number): void {
  if (Date.parse(c.validFrom) > now || Date.parse(c.validTo) < now) {
    throw new PermissionDeniedError(
      `x509pop: certificate ${c.serialNumber} is outside its validity period`,
    );
  }
}
