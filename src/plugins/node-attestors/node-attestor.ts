// The server half of a node attestor: turns evidence from an agent into an agent identity and
// node selectors. One method, like SPIRE's NodeAttestor; an attestor that needs a proof of
// possession asks for it through `challenge`.
import type { Selector } from '../../core/selector.ts';

/** Sends a challenge to the agent and resolves with its response (bounded by the server). */
export type ChallengeFn = (challenge: Uint8Array) => Promise<Uint8Array>;

export interface NodeAttestation {
  /** Path segments after /spire/agent/<type>/, unless `spiffeId` is set. */
  readonly idSegments: readonly string[];
  /** An explicit agent SPIFFE ID (e.g. one an operator bound to a join token). */
  readonly spiffeId?: string;
  readonly selectors: readonly Selector[];
  /** Whether the same node may attest again with the same evidence (join tokens: no). */
  readonly canReattest: boolean;
}

export interface NodeAttestor {
  readonly type: string;
  /** Throws PermissionDeniedError when the evidence does not hold. `payload` is untrusted. */
  attest(payload: Uint8Array, challenge: ChallengeFn): Promise<NodeAttestation>;
}

export const MAX_ATTESTATION_PAYLOAD_BYTES = 64 * 1024;
