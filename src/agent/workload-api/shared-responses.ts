// The streams' answers, encoded once per change. After an entry change, a rotation or a bundle
// change, every open stream recomputes its caller's view; with a thousand streams most of them
// ask for the same thing (one workload's many streams, or many processes of one service). Here
// each distinct answer is computed, checked and encoded into its gRPC frame once per change, and
// every stream that should get it writes the same bytes (fast-stream.ts).
//
// Exactness: an answer is shared only between callers with the same selectors, kind and
// moment. The port's contract (identity-source.ts) is that a view depends on nothing of the
// caller but its selectors and the entries they match; the entries are matched again here, once
// per selector set and change, and a shared answer is dropped when one of its entries expires.
// Everything is dropped at each change notification of the source, before any stream wakes for
// it (the streams recompute asynchronously, after every listener ran).
import { toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { attributesKey } from '../../core/attributes.ts';
import { PermissionDeniedError } from '../../core/errors.ts';
import { formatSelector, type Selector } from '../../core/selector.ts';
import type { AttestedCaller } from '../attestation/caller.ts';
import { grpcFrame } from './fast-grpc.ts';
import type { WorkloadIdentitySource, WorkloadView } from './identity-source.ts';

/** One streaming method's answer: its message, and whether a caller without SVIDs is refused. */
export interface StreamKind<D extends DescMessage = DescMessage> {
  readonly name: string;
  readonly schema: D;
  readonly toMessage: (view: WorkloadView) => MessageShape<D>;
  /** FetchX509SVID needs an SVID; the bundle streams need a matching entry (handlers.ts). */
  readonly needsSvid: boolean;
}

/** A gRPC frame (flag byte, length, message) to write, or the error that ends the stream. */
export type SharedAnswer = { readonly frame: Buffer } | { readonly error: Error };

const keys = new WeakMap<readonly Selector[], string>();

interface Held {
  readonly answer: SharedAnswer;
  /** Wall-clock ms when the first of its entries expires (then the answer is recomputed). */
  readonly validUntil: number;
}

export interface SharedResponsesDeps {
  readonly source: Pick<WorkloadIdentitySource, 'view'>;
  readonly attestation: { rematch(caller: AttestedCaller): AttestedCaller };
  /** Wall-clock ms, compared with entries' expiry; default Date.now. */
  readonly now?: () => number;
}

/**
 * Held only while streams are open: each open stream's own change listener calls `changed()`
 * (all of them run, synchronously, before any stream recomputes), and when the last stream
 * closes everything is dropped, since no listener would then see the next change.
 */
export class SharedResponses {
  readonly #d: SharedResponsesDeps;
  readonly #now: () => number;
  /** Per kind, per caller key. */
  #held = new Map<StreamKind, Map<string, Held>>();
  #streams = 0;

  constructor(d: SharedResponsesDeps) {
    this.#d = d;
    this.#now = d.now ?? Date.now;
  }

  /** The key under which callers share answers: their selectors, as a set. Once per stream. */
  static callerKey(caller: AttestedCaller): string {
    // A reused attestation hands out the same frozen selectors: their key is made once.
    let key = keys.get(caller.selectors);
    if (key === undefined) {
      key = JSON.stringify(caller.selectors.map(formatSelector).sort());
      // Entry conditions are decided per attribute set: callers share only with the same one.
      if (caller.attributes && Object.keys(caller.attributes).length > 0)
        key += `\n${attributesKey(caller.attributes)}`;
      keys.set(caller.selectors, key);
    }
    return key;
  }

  /** A stream opens; the returned function says it closed. */
  open(): () => void {
    this.#streams++;
    let closed = false;
    return () => {
      if (closed) return;
      closed = true;
      if (--this.#streams === 0) this.changed();
    };
  }

  /** The source notified a change: every answer is computed again. */
  changed(): void {
    if (this.#held.size > 0) this.#held = new Map();
  }

  /** The caller's current answer of this kind: shared, or computed and encoded now. */
  answer(kind: StreamKind, caller: AttestedCaller, callerKey: string): SharedAnswer {
    let ofKind = this.#held.get(kind);
    const held = ofKind?.get(callerKey);
    if (held && this.#now() < held.validUntil) return held.answer;
    const current = this.#d.attestation.rematch(caller);
    let validUntil = Infinity;
    for (const e of current.entries)
      if (e.expiresAt !== null) validUntil = Math.min(validUntil, e.expiresAt);
    const answer = compute(kind, this.#d.source.view(current));
    // A refusal is not held: it is cheap to compute, and a source may change before it notifies
    // (the X.509-SVID cache notifies when a whole refresh is done), so a caller whose SVID just
    // arrived must not be refused from an earlier answer. A frame held a little too long is
    // replaced at the notification, like on any open stream.
    if (this.#streams > 0 && 'frame' in answer) {
      if (!ofKind) this.#held.set(kind, (ofKind = new Map()));
      ofKind.set(callerKey, { answer, validUntil });
    }
    return answer;
  }
}

/** The same rule as handlers.ts viewStream, and the message in its gRPC frame. */
function compute(kind: StreamKind, view: WorkloadView): SharedAnswer {
  if (kind.needsSvid ? view.svids.length === 0 : !view.identified) {
    return { error: new PermissionDeniedError('no identity issued') };
  }
  return { frame: grpcFrame(toBinary(kind.schema, kind.toMessage(view))) };
}
