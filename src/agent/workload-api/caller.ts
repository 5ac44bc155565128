// Caller → selectors: workload attestation bracketed by the process pin (process-pin.ts), with a
// time bound so a stuck attestor cannot hold a request (and its memory) forever.
import type { HandlerContext } from '@connectrpc/connect';
import { UnavailableError } from '../../core/errors.ts';
import type { Selector } from '../../core/selector.ts';
import { connectionPeerKey } from './connection-peer.ts';
import type { WorkloadIdentitySource } from './identity-source.ts';
import type { WorkloadApiLogger } from './log.ts';
import { verifyPin } from './process-pin.ts';

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
    throw new UnavailableError('workload attestation failed', { cause: e });
  }
  await verifyPin(peer.pin);
  d.log.debug(
    { pid: peer.caller.pid, uid: peer.caller.uid, selectors: selectors.length },
    'workload attested',
  );
  return selectors;
}

/** Settles with `p`, or rejects when `signal` aborts first (the attestor may ignore signals). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
