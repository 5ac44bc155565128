// Agent half of x509pop: present the certificate chain, sign the server's nonce.
import { type KeyObject, X509Certificate, createPrivateKey, sign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError } from '../../../core/errors.ts';
import { pemToDers } from '../../../crypto/x509/pem.ts';
import type { AgentNodeAttestor } from '../node-attestor.ts';
import { X509POP_CONTEXT, encodeX509PopPayload } from './payload.ts';
import { X509POP_TYPE } from './server.ts';

export function x509PopPayload(chainDer: readonly Uint8Array[]): Uint8Array {
  return encodeX509PopPayload(chainDer);
}

export function answerX509PopChallenge(key: KeyObject, nonce: Uint8Array): Uint8Array {
  const data = Buffer.concat([Buffer.from(X509POP_CONTEXT), Buffer.from(nonce)]);
  return sign(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', data, key);
}

/** Reads the agent's certificate chain and key (PEM files); refuses a key that is not the leaf's. */
export async function x509PopAgent(certFile: string, keyFile: string): Promise<AgentNodeAttestor> {
  const chain = pemToDers(await readFile(certFile, 'utf8'));
  const key = createPrivateKey(await readFile(keyFile, 'utf8'));
  const leaf = chain[0];
  if (!leaf) throw new InvalidArgumentError(`x509pop: ${certFile} holds no certificate`);
  if (!new X509Certificate(Buffer.from(leaf)).checkPrivateKey(key)) {
    throw new InvalidArgumentError(`x509pop: ${keyFile} is not the key of ${certFile}`);
  }
  return {
    type: X509POP_TYPE,
    canReattest: true,
    payload: async () => x509PopPayload(chain),
    answer: (nonce) => answerX509PopChallenge(key, nonce),
  };
}
