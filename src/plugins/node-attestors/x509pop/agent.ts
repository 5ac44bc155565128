// Agent half of x509pop: present the certificate chain, sign the server's nonce.
import { type KeyObject, sign } from 'node:crypto';
import { X509POP_CONTEXT, encodeX509PopPayload } from './payload.ts';

export function x509PopPayload(chainDer: readonly Uint8Array[]): Uint8Array {
  return encodeX509PopPayload(chainDer);
}

export function answerX509PopChallenge(key: KeyObject, nonce: Uint8Array): Uint8Array {
  const data = Buffer.concat([Buffer.from(X509POP_CONTEXT), Buffer.from(nonce)]);
  return sign(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', data, key);
}
