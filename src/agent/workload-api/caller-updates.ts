// The caller of an open FetchX509SVID stream, followed while the stream runs: the attestation
// service re-checks its process (running-callers.ts) and reports a new self (another binary,
// another library mapped, other credentials) or the error the stream ends with (the process has
// gone). Both stream routes (fast-stream.ts, handlers.ts) answer for `current` and end with
// `failure`, exactly as they do after an entry or posture change.
import type { AttestationService } from '../attestation/attestation-service.ts';
import type { AttestedCaller } from '../attestation/caller.ts';
import type { ConnectionPeer } from '../attestation/connection-peer.ts';
import type { WorkloadIdentitySource } from './identity-source.ts';

export interface FollowedCaller {
  /** The caller to answer for now. */
  readonly current: AttestedCaller;
  /** Set once: the stream ends with it. */
  readonly failure: Error | undefined;
  /** Stops following (the stream has ended). */
  stop(): void;
}

/**
 * Follows `caller` from now on; `changed` runs when `current` or `failure` changed (the stream
 * then recomputes its answer).
 */
export function followCaller(
  d: {
    readonly attestation: Pick<AttestationService, 'watch'>;
    readonly source: Pick<WorkloadIdentitySource, 'prepare'>;
  },
  peer: ConnectionPeer,
  caller: AttestedCaller,
  changed: () => void,
): FollowedCaller {
  let current = caller;
  let failure: Error | undefined;
  let seq = 0;
  let stopped = false;
  const off = d.attestation.watch(peer, caller, (change) => {
    if (stopped) return;
    if ('error' in change) {
      failure = change.error;
      changed();
      return;
    }
    const mine = ++seq;
    // The new self's conditional entries are decided (and its missing SVIDs minted, bounded)
    // before it is answered for, as at a stream's start: a process whose new attributes still
    // qualify is not refused while the server's answer is on its way. Until then the stream
    // keeps its last answer; only the latest change is applied.
    void d.source
      .prepare(change.caller)
      .catch(() => {})
      .then(() => {
        if (stopped || mine !== seq) return;
        current = change.caller;
        changed();
      });
  });
  return {
    get current() {
      return current;
    },
    get failure() {
      return failure;
    },
    stop() {
      stopped = true;
      off();
    },
  };
}
