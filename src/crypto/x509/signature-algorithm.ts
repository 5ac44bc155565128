// Signature AlgorithmIdentifiers: which one a CA key signs with, and which ones we accept when
// verifying CSRs (anything else is "unsupported", never guessed).
import type { KeyType } from '../../core/authority.ts';
import { nul, oid, seq } from '../der/der-writer.ts';
import { OID } from '../der/oids.ts';

export interface SigningAlgorithm {
  /** The DER AlgorithmIdentifier placed in TBSCertificate.signature and Certificate.signatureAlgorithm. */
  readonly algIdDer: Uint8Array;
}

const ecdsa256 = seq(oid(OID.ecdsaSha256));
const ecdsa384 = seq(oid(OID.ecdsaSha384));
// RFC 4055 §5: the parameters of sha*WithRSAEncryption MUST be NULL.
const rsa256 = seq(oid(OID.rsaSha256), nul());

export function signingAlgorithmFor(type: KeyType): SigningAlgorithm {
  switch (type) {
    case 'ec-p256':
      return { algIdDer: ecdsa256 };
    case 'ec-p384':
      return { algIdDer: ecdsa384 };
    case 'rsa-2048':
    case 'rsa-4096':
      return { algIdDer: rsa256 };
  }
}

export interface VerifyAlgorithm {
  /** Node digest name, or null for Ed25519 (which hashes internally). */
  readonly hash: 'sha256' | 'sha384' | 'sha512' | null;
  /** The key family the signature algorithm requires. */
  readonly keyFamily: 'ec' | 'rsa' | 'ed25519';
  /** Whether AlgorithmIdentifier.parameters may be NULL (RSA) or must be absent. */
  readonly nullParams: boolean;
}

export const verifyAlgorithms: ReadonlyMap<string, VerifyAlgorithm> = new Map([
  [OID.ecdsaSha256, { hash: 'sha256', keyFamily: 'ec', nullParams: false }],
  [OID.ecdsaSha384, { hash: 'sha384', keyFamily: 'ec', nullParams: false }],
  [OID.ecdsaSha512, { hash: 'sha512', keyFamily: 'ec', nullParams: false }],
  [OID.rsaSha256, { hash: 'sha256', keyFamily: 'rsa', nullParams: true }],
  [OID.rsaSha384, { hash: 'sha384', keyFamily: 'rsa', nullParams: true }],
  [OID.rsaSha512, { hash: 'sha512', keyFamily: 'rsa', nullParams: true }],
  [OID.ed25519, { hash: null, keyFamily: 'ed25519', nullParams: false }],
]);
