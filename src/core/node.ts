// Attested nodes (agents): the record the server keeps of each agent it has attested.
import type { Selector } from './selector.ts';

export interface AttestedNode {
  /** The agent's SPIFFE ID, e.g. spiffe://td/spire/agent/join_token/<id>. */
  readonly spiffeId: string;
  /** Node attestor that admitted it: join_token, x509pop, ... */
  readonly attestationType: string;
  /** Serial (hex) of the agent SVID currently in use. */
  readonly serialNumber: string;
  /** Serial of a renewed SVID the agent has not yet presented; "" when none. */
  readonly newSerialNumber: string;
  /** Epoch ms when the current agent SVID expires. */
  readonly expiresAt: number;
  readonly selectors: readonly Selector[];
  readonly banned: boolean;
  /** Whether the attestor allows re-attestation (x509pop yes, join_token no). */
  readonly canReattest: boolean;
  readonly createdAt: number;
  readonly updatedAt: number;
}
