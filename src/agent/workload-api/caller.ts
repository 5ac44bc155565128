// Caller → selectors: workload attestation bracketed by the process pin (process-pin.ts), with a
// time bound so a stuck attestor cannot hold a request (and its memory) forever. Unary calls may
// reuse the connection's last attestation while the process still reads the same (see
// attestation-cache.ts for why that is safe); streams always attest afresh (once per stream).
import { Code, ConnectError, type HandlerContext } from '@connectrpc/connect';
import { UnavailableError } from '../../core/errors.ts';
import type { Selector } from '../../core/selector.ts';
import type { AttestationCache } from './attestation-cache.ts';
import { connectionPeerKey, type ConnectionPeer } from './connection-peer.ts';
import type { WorkloadIdentitySource } from './identity-source.ts';
import type { WorkloadApiLogger } from './log.ts';
import { verifyPin } from './process-pin.ts';
import { untilAborted } from './abortable.ts';

export interface CallerDeps {
  readonly source: WorkloadIdentitySource;
  readonly log: WorkloadApiLogger;
  readonly attestTimeoutMs: number;
  /** Per-connection attestation results for unary calls; absent: always attest. */
  readonly attestations?: AttestationCache;
}

/**
 * The caller's selectors. Every failure is Unavailable, as in SPIRE: the client retries with
 * backoff, and the retry attests afresh (a caller we could not identify or whose process changed
 * under us gets nothing, never a guess). `reuse`: a cached attestation of this connection's
 * process may answer, after the same pin check a fresh one gets.
 */
export async function attestCaller(
  d: CallerDeps,
  ctx: CallContext,
  reuse = false,
): Promise<Selector[]> {
  const peer = 'values' in ctx ? ctx.values.get(connectionPeerKey) : ctx.peer;
  if (!peer.ok) {
    throw new UnavailableError('could not identify the caller', { cause: peer.reason });
  }
  const cache = reuse && d.attestations?.enabled ? d.attestations : undefined;
  const cached = cache?.get(peer.pin);
  if (cached) {
    await verifyPin(peer.pin);
    return cached;
  }
  const before = cache?.fingerprint(peer.pin);
  // One controller and one timer, not AbortSignal.any + AbortSignal.timeout: those cost a
  // dependent-signal registration, a weak timer and (on expiry) a DOMException per call.
  const bound = new AbortController();
  const onCancel = () => bound.abort(ctx.signal.reason);
  ctx.signal.addEventListener('abort', onCancel, { once: true });
  const timer = setTimeout(
    () => bound.abort(new UnavailableError('workload attestation timed out')),
    d.attestTimeoutMs,
  );
  let selectors: Selector[];
  try {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    selectors = await untilAborted(d.source.attest(peer.caller, bound.signal), bound.signal);
  } catch (e) {
    if (ctx.signal.aborted) throw cancelled(ctx);
    throw new UnavailableError('workload attestation failed', { cause: e });
  } finally {
    clearTimeout(timer);
    ctx.signal.removeEventListener('abort', onCancel);
  }
  await verifyPin(peer.pin);
  cache?.put(peer.pin, before, selectors);
  d.log.debug(
    { pid: peer.caller.pid, uid: peer.caller.uid, selectors: selectors.length },
    'workload attested',
  );
  return selectors;
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
