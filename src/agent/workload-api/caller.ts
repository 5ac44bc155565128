// The Workload API's side of caller attestation: the connection's peer travels from the
// transport to the handlers (a Connect context value, or directly on the gRPC fast path), and
// the attestation service (agent/attestation) turns it into the attested caller. Cancellation is
// reported as Connect reports it.
import { Code, ConnectError, createContextKey, type HandlerContext } from '@connectrpc/connect';
import type { AttestationService } from '../attestation/attestation-service.ts';
import type { AttestedCaller } from '../attestation/caller.ts';
import type { ConnectionPeer } from '../attestation/connection-peer.ts';

export interface CallerDeps {
  readonly attestation: AttestationService;
}

/**
 * The attested caller of this call. `reuse`: a unary call may be answered from the
 * connection's last attestation, re-validated (attestation-cache.ts). Failures are Unavailable.
 */
export async function attestCaller(
  d: CallerDeps,
  ctx: CallContext,
  reuse = false,
): Promise<AttestedCaller> {
  const peer = 'values' in ctx ? ctx.values.get(connectionPeerKey) : ctx.peer;
  try {
    return await d.attestation.attest(peer, ctx.signal, { reuse });
  } catch (e) {
    if (ctx.signal.aborted) throw cancelled(ctx);
    throw e;
  }
}

/**
 * What a call needs from its transport: the connection's peer and the call's signal (aborted
 * when the client goes away or its deadline passes, with a ConnectError saying which). A Connect
 * HandlerContext carries the peer in its context values; the gRPC fast path (fast-unary.ts)
 * passes it directly.
 */
export type CallContext =
  | Pick<HandlerContext, 'values' | 'signal'>
  | { readonly peer: ConnectionPeer; readonly signal: AbortSignal };

/** The client went away or its deadline passed (Connect's reason says which): nothing to log. */
export function cancelled(ctx: { readonly signal: AbortSignal }): ConnectError {
  const reason: unknown = ctx.signal.reason;
  return reason instanceof ConnectError
    ? reason
    : new ConnectError('request cancelled', Code.Canceled);
}

/** Carries the connection's peer from the transport to the handlers. */
export const connectionPeerKey = createContextKey<ConnectionPeer>(
  { ok: false, reason: 'no transport peer on the request' },
  { description: 'workload API connection peer' },
);
