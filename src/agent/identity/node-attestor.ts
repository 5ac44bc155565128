// The agent halves of node attestation, built from config: what evidence to send and how to
// answer the server's challenges.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError } from '../../core/errors.ts';
import { pemToDers } from '../../crypto/x509/pem.ts';
import {
  answerX509PopChallenge,
  x509PopPayload,
} from '../../plugins/node-attestors/x509pop/agent.ts';

export interface AgentNodeAttestor {
  readonly type: string;
  /** join_token: a token attests once; x509pop: the same certificate may attest again. */
  readonly canReattest: boolean;
  payload(): Promise<Uint8Array>;
  answer(challenge: Uint8Array): Uint8Array;
}

export function joinTokenAttestor(token: string): AgentNodeAttestor {
  return {
    type: 'join_token',
    canReattest: false,
    payload: async () => Buffer.from(token, 'utf8'),
    answer: () => {
      throw new InvalidArgumentError('join_token attestation takes no challenge');
    },
  };
}

export async function x509PopAttestor(
  certFile: string,
  keyFile: string,
): Promise<AgentNodeAttestor> {
  const chain = pemToDers(await readFile(certFile, 'utf8'));
  const key = createPrivateKey(await readFile(keyFile, 'utf8'));
  const leaf = chain[0];
  if (!leaf) throw new InvalidArgumentError(`x509pop: ${certFile} holds no certificate`);
  if (!new X509Certificate(Buffer.from(leaf)).checkPrivateKey(key)) {
    throw new InvalidArgumentError(`x509pop: ${keyFile} is not the key of ${certFile}`);
  }
  return {
    type: 'x509pop',
    canReattest: true,
    payload: async () => x509PopPayload(chain),
    answer: (nonce) => answerX509PopChallenge(key, nonce),
  };
}
