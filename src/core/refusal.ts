// Why the server refuses an agent, as a stable reason code next to the error's code. The agent
// acts on the reason (a banned agent stops; an evicted or unknown one attests again when it can),
// never on message text, which is for humans and may change.
//
// On the wire the reason travels as response metadata under REFUSAL_REASON_KEY: a gRPC trailer
// (or a Connect response header) beside the PermissionDenied status. Metadata is the one
// mechanism every gRPC and Connect client reads without extra message types.
import { PermissionDeniedError } from './errors.ts';

export const REFUSAL_REASON_KEY = 'tessera-refusal-reason';

/**
 * Set on every error the server itself answers with, so a client tells "the server answered:
 * something behind it is unavailable" (its datastore, a credential provider's upstream) from "no
 * server answered" — both are `unavailable`.
 */
export const SERVER_ANSWERED_KEY = 'tessera-server-answered';

export const refusalReasons = [
  /** The agent's node record is banned: it may neither call nor attest again. */
  'agent_banned',
  /** The agent was evicted while connected (its node record was deleted). */
  'agent_evicted',
  /** The server keeps no node record for the agent's SVID (evicted before this call, or never). */
  'agent_unknown',
  /** The agent presented an SVID that is no longer its current one (it attested again since). */
  'agent_svid_superseded',
  /** The join token does not exist, has expired or was already used (one lookup cannot tell). */
  'join_token_rejected',
] as const;

export type RefusalReason = (typeof refusalReasons)[number];

/** A refusal the agent can act on: PermissionDenied plus its reason code. */
export class AgentRefusedError extends PermissionDeniedError {
  readonly reason: RefusalReason;
  constructor(reason: RefusalReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AgentRefusedError';
    this.reason = reason;
  }
}

export function isRefusalReason(value: unknown): value is RefusalReason {
  return typeof value === 'string' && (refusalReasons as readonly string[]).includes(value);
}

/** The reason in a response's metadata; null when absent or unknown to this version. */
export function refusalReasonIn(metadata: {
  get(key: string): string | null;
}): RefusalReason | null {
  const value = metadata.get(REFUSAL_REASON_KEY);
  return isRefusalReason(value) ? value : null;
}
