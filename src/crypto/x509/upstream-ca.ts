// Loads an upstream CA (cert chain + key from PEM files) for signing intermediate CAs, and checks
// up front what would otherwise surface as unverifiable certificates hours later.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { InvalidArgumentError } from '../../core/errors.ts';
import type { UpstreamCa } from './ca.ts';
import { basicConstraints, keyUsageBits, KU, parseCertificate } from './certificate.ts';
import { pemToDers } from './pem.ts';

export function loadUpstreamCa(certPem: string, keyPem: string): UpstreamCa {
  const certChainDer = pemToDers(certPem, 'CERTIFICATE');
  const first = certChainDer[0];
  if (!first)
    throw new InvalidArgumentError('upstream CA: no CERTIFICATE block in the certificate PEM');
  const key = parsePrivateKey(keyPem);
  const parsed = parseCertificate(first, 'upstream CA certificate');
  if (basicConstraints(parsed)?.ca !== true) {
    throw new InvalidArgumentError(
      'upstream CA: the certificate is not a CA (basicConstraints cA is not true)',
    );
  }
  const ku = keyUsageBits(parsed);
  if (ku !== null && (ku & KU.keyCertSign) === 0) {
    throw new InvalidArgumentError('upstream CA: the certificate KeyUsage lacks keyCertSign');
  }
  if (!new X509Certificate(first).checkPrivateKey(key)) {
    throw new InvalidArgumentError('upstream CA: the private key does not match the certificate');
  }
  return { certChainDer, key };
}

function parsePrivateKey(keyPem: string): KeyObject {
  try {
    return createPrivateKey({ key: keyPem, format: 'pem' });
  } catch (e) {
    throw new InvalidArgumentError(
      `upstream CA: cannot parse the private key PEM (${(e as Error).message})`,
    );
  }
}
