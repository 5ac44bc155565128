// Caller → selectors: workload attestation bracketed by the process pin (process-pin.ts), with a
// time bound so a stuck attestor cannot hold a request (and its memory) forever.
import { Code, ConnectError, type HandlerContext } from '@connectrpc/connect';
import { UnavailableError } from '../../core/errors.ts';
import type { Selector } from '../../core/selector.ts';
import { connectionPeerKey } from './connection-peer.ts';
import type { WorkloadIdentitySource } from './identity-source.ts';
import type { WorkloadApiLogger } from './log.ts';
import { verifyPin } from './process-pin.ts';
import { untilAborted } from './abortable.ts';

export interface CallerDeps {
  readonly source: WorkloadIdentitySource;
  readonly log: WorkloadApiLogger;
  readonly attestTimeoutMs: number;
}

/**
 * The caller's selectors. Every failure is Unavailable, as in SPIRE: the client retries with
 * backoff, and the retry attests afresh (a caller we could not identify or whose process changed
 * under us gets nothing, never a guess).
 */
export async function attestCaller(d: CallerDeps, ctx: HandlerContext): Promise<Selector[]> {
  const peer = ctx.values.get(connectionPeerKey);
  if (!peer.ok) {
    throw new UnavailableError('could not identify the caller', { cause: peer.reason });
  }
  const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(d.attestTimeoutMs)]);
  let selectors: Selector[];
  try {
    selectors = await untilAborted(d.source.attest(peer.caller, signal), signal);
  } catch (e) {
    if (ctx.signal.aborted) throw cancelled(ctx);
    throw new UnavailableError('workload attestation failed', { cause: e });
  }
  await verifyPin(peer.pin);
  d.log.debug(
    { pid: peer.caller.pid, uid: peer.caller.uid, selectors: selectors.length },
    'workload attested',
  );
  return selectors;
}

/** The client went away or its deadline passed (Connect's reason says which): nothing to log. */
export function cancelled(ctx: HandlerContext): ConnectError {
  const reason: unknown = ctx.signal.reason;
  return reason instanceof ConnectError
    ? reason
    : new ConnectError('request cancelled', Code.Canceled);
}
