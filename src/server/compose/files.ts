// The files the `sts` block names, read by the composition root (nothing below it reads files):
// the services receive their contents.
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../../core/errors.ts';
import { federatedTrustDomain } from '../sts/federated.ts';
import type { IssuerConfig, JwksFiles } from '../sts/issuers.ts';

/** Reads `sts.ca_file`: the PEM certificates it holds. */
export function readCaFile(file: string): string[] {
  if (!file) return [];
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InvalidArgumentError(
      `config: sts.ca_file: cannot read "${file}": ${(e as Error).message}`,
    );
  }
  const certs = [
    ...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g),
  ].map((m) => m[0]);
  if (certs.length === 0)
    throw new InvalidArgumentError(`config: sts.ca_file: "${file}" holds no PEM certificate`);
  return certs;
}

/**
 * Reads the `jwks_file` of every OIDC issuer of `sts.issuers` (federated `spiffe://` issuers take
 * their keys from the trust bundle; the exchange refuses a jwks_file on them).
 */
export function readJwksFiles(issuers: readonly IssuerConfig[]): JwksFiles {
  const files = new Map<string, string>();
  issuers.forEach((c, i) => {
    if (c.jwks_file === undefined || federatedTrustDomain(c.issuer) !== undefined) return;
    if (files.has(c.jwks_file)) return;
    try {
      files.set(c.jwks_file, readFileSync(c.jwks_file, 'utf8'));
    } catch (e) {
      throw new InvalidArgumentError(
        `config: sts.issuers[${i}].jwks_file: cannot read a JWKS from "${c.jwks_file}": ${(e as Error).message}`,
      );
    }
  });
  return files;
}
