// Test helpers for node attestors' server halves: attestation with no challenge round, and a
// refusal pinned to its class and exact message.
import assert from 'node:assert/strict';
import type { NodeAttestor } from '../node-attestor.ts';

/** The challenge callback of an attestor that must not ask one. */
export const noChallenge = async (): Promise<Uint8Array> => assert.fail('no challenge expected');

/** `a` refuses `evidence` with a PermissionDeniedError saying exactly `message`. */
export function refused(a: NodeAttestor, evidence: Uint8Array, message: string): Promise<void> {
  return assert.rejects(a.attest(evidence, noChallenge), {
    name: 'PermissionDeniedError',
    message,
  });
}
