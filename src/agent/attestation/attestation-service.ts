// The one caller-attestation path for every door. Given a connection's peer (connection-peer.ts
// for Unix sockets, tcp-peer.ts for loopback TCP), it runs the workload attestors under a time
// bound, re-checks the process pin (PID reuse), matches entries once, and returns the caller.
// Calls may reuse the connection's last attestation while the process still reads the same
// (attestation-cache.ts says why that is safe): the Workload API's unary FetchJWTSVID and its
// streams (at their start) do; the other doors say per call.
import type { Socket } from 'node:net';
import { UnavailableError } from '../../core/errors.ts';
import type { Selector } from '../../core/selector.ts';
import { AttestationCache } from './attestation-cache.ts';
import { RunningCallers, type CallerChange } from './running-callers.ts';
import type { AttestedCaller, EntryMatcher, SelectorSource } from './caller.ts';
import { identifyUnixPeer, releaseConnection, type ConnectionPeer } from './connection-peer.ts';
import { checkPin, verifyPin, type ProcessPin } from './process-pin.ts';
import type { Clock } from '../../core/clock.ts';
import type { TcpEndpoint } from './proc-net-tcp.ts';
import { identifyTcpPeer, type TcpPeerOptions } from './tcp-peer.ts';
import type { AttributeSource } from './workload-attributes.ts';

const NO_ATTRIBUTES: Readonly<Record<string, string>> = Object.freeze({});

type LogFn = (fields: Record<string, unknown>, msg: string) => void;

export interface AttestationServiceOptions {
  /** The workload attestors (workload-attestors.ts), or a test's own source. */
  readonly selectors: SelectorSource;
  /** Attributes beyond selectors (workload-attributes.ts); absent: none. */
  readonly attributes?: AttributeSource;
  readonly entries: EntryMatcher;
  /** Workload attestation of one call is abandoned (Unavailable) after this. Default 30 s. */
  readonly attestTimeoutMs?: number;
  /**
   * A connection's attestation is reused for this long while the process's kernel facts read
   * the same (attestation-cache.ts). 0: attest every call. Default 1 s.
   */
  readonly reuseTtlMs?: number;
  /**
   * A reused attestation's kernel facts (executable, credentials, cgroup) are read again at most
   * this often per connection; the PID-reuse pin is checked on every call. 0: every call.
   * Default 100 ms (attestation-cache.ts, docs/threat-model.md).
   */
  readonly revalidateMs?: number;
  /**
   * The callers of open streams that watch them (FetchX509SVID) are re-checked this often:
   * their fingerprint read, and attested again when it changed (running-callers.ts).
   * Default 1 s.
   */
  readonly recheckMs?: number;
  readonly log?: { readonly debug: LogFn };
  /** Loopback TCP peer lookup bounds (tcp-peer.ts). */
  readonly tcp?: TcpPeerOptions;
  /** Monotonic milliseconds (tests). */
  readonly now?: () => number;
  /** Wall clock for entry expiry; default the system clock. */
  readonly clock?: Clock;
}

export const DEFAULT_REVALIDATE_MS = 100;
export const DEFAULT_RECHECK_MS = 1000;

export interface AttestOptions {
  /** A unary call may be answered from the connection's last attestation (re-validated). */
  readonly reuse?: boolean;
}

export class AttestationService {
  readonly #selectors: SelectorSource;
  readonly #attributes: AttributeSource | undefined;
  /** Attributes per attestation: keyed by its (frozen, reused) selectors array. */
  readonly #attributesOf = new WeakMap<readonly Selector[], Readonly<Record<string, string>>>();
  readonly #entries: EntryMatcher;
  readonly #timeoutMs: number;
  readonly #cache: AttestationCache;
  /** The fingerprint each attestation (its selectors array) was made under. */
  readonly #baselines = new WeakMap<readonly Selector[], string>();
  readonly #running: RunningCallers;
  readonly #debug: LogFn;
  readonly #tcp: TcpPeerOptions;
  /** Wall-clock milliseconds, for entry expiry (entries carry wall-clock expiry times). */
  readonly #now: () => number;
  /** Per connection: the last answer, reused while nothing it depends on changed. */
  readonly #last = new WeakMap<
    ProcessPin,
    { readonly caller: AttestedCaller; readonly generation: number; readonly validUntil: number }
  >();

  constructor(o: AttestationServiceOptions) {
    this.#selectors = o.selectors;
    this.#attributes = o.attributes;
    this.#entries = o.entries;
    this.#timeoutMs = o.attestTimeoutMs ?? 30_000;
    this.#cache = new AttestationCache({
      ttlMs: o.reuseTtlMs ?? 1000,
      revalidateMs: o.revalidateMs ?? DEFAULT_REVALIDATE_MS,
      ...(o.now ? { now: o.now } : {}),
    });
    // Called as a method: pino's log functions need their logger as `this`.
    const log = o.log;
    this.#debug = log ? (fields, msg) => log.debug(fields, msg) : () => {};
    this.#tcp = o.tcp ?? {};
    this.#now = o.clock ? () => o.clock!.now() : () => Date.now();
    this.#running = new RunningCallers({
      intervalMs: o.recheckMs ?? DEFAULT_RECHECK_MS,
      fingerprint: (pin) => this.#cache.fingerprint(pin),
      reattest: async (peer, signal) => {
        const selectors = await this.#fresh(peer, signal, this.#cacheIfEnabled());
        return { caller: this.#caller(peer, selectors), before: this.#baselines.get(selectors) };
      },
      log: (fields, msg) => this.#debug(fields, msg),
    });
  }

  /** A Unix-socket connection's peer (SO_PEERCRED), pinned. Never throws. */
  identifyUnix(socket: Socket): ConnectionPeer {
    return identifyUnixPeer(socket);
  }

  /**
   * A loopback TCP connection's peer (/proc/net/tcp{,6} → inode → pid), pinned. Never throws.
   * `dialled`: a REDIRECTed connection's original destination, from the kernel (tcp-peer.ts).
   */
  identifyTcp(socket: Socket, dialled?: TcpEndpoint): Promise<ConnectionPeer> {
    return identifyTcpPeer(socket, this.#tcp, dialled);
  }

  /** Releases the connection's pin (its pidfd); every later attest of it fails. */
  release(peer: ConnectionPeer): void {
    if (peer.ok) this.#cache.release(peer.pin);
    releaseConnection(peer);
  }

  /**
   * The caller of one call. Every failure is Unavailable, as in SPIRE: the client retries with
   * backoff, and the retry attests afresh (a caller we could not identify or whose process
   * changed under us gets nothing, never a guess). When `signal` aborts (the client went away),
   * its reason is thrown, for the door to report as it does cancellations.
   */
  async attest(
    peer: ConnectionPeer,
    signal: AbortSignal,
    o: AttestOptions = {},
  ): Promise<AttestedCaller> {
    if (!peer.ok) {
      throw new UnavailableError('could not identify the caller', { cause: peer.reason });
    }
    const cache = o.reuse ? this.#cacheIfEnabled() : undefined;
    const cached = cache?.get(peer.pin);
    if (cached) {
      await verifyPin(peer.pin);
      return this.#caller(peer, cached);
    }
    return this.#caller(peer, await this.#fresh(peer, signal, cache, o.reuse === true));
  }

  /**
   * Watches the caller of an open stream while it runs (running-callers.ts): the listener hears
   * its new self when its selectors or attributes change, or the error to end with when its
   * process has gone or cannot be attested again. Returns the function that stops watching.
   */
  watch(
    peer: ConnectionPeer,
    caller: AttestedCaller,
    listener: (change: CallerChange) => void,
  ): () => void {
    if (!peer.ok) return () => {};
    return this.#running.watch(peer, caller, this.#baselines.get(caller.selectors), listener);
  }

  #cacheIfEnabled(): AttestationCache | undefined {
    return this.#cache.enabled ? this.#cache : undefined;
  }

  /**
   * Runs the attestors (and collects attributes) for the process as it is now. The fingerprint
   * is read before, when the result may be cached or watched (`baseline`): a process that
   * changes while being attested is then seen as changed afterwards.
   */
  async #fresh(
    peer: ConnectionPeer & { ok: true },
    signal: AbortSignal,
    cache: AttestationCache | undefined,
    baseline = true,
  ): Promise<Selector[]> {
    const before = cache || baseline ? this.#cache.fingerprint(peer.pin) : undefined;
    const selectors = await this.#runAttestors(peer, signal);
    if (this.#attributes) {
      this.#attributesOf.set(
        selectors,
        await this.#attributes.collect(peer.caller, selectors, signal).catch((e: unknown) => {
          if (signal.aborted) throw signal.reason;
          this.#debug({ pid: peer.caller.pid, err: (e as Error).message }, 'no attributes');
          return NO_ATTRIBUTES;
        }),
      );
    }
    await verifyPin(peer.pin);
    cache?.put(peer.pin, before, selectors);
    if (before !== undefined) this.#baselines.set(selectors, before);
    this.#debug(
      { pid: peer.caller.pid, uid: peer.caller.uid, selectors: selectors.length },
      'workload attested',
    );
    return selectors;
  }

  /**
   * The connection's last attestation, re-validated (attestation-cache.ts) and its pin checked,
   * synchronously: the hot path of a unary call that repeats on one connection. undefined when
   * there is none to reuse (then attest()); throws what attest() throws when the pin fails.
   */
  reused(peer: ConnectionPeer): AttestedCaller | undefined {
    if (!peer.ok || !this.#cache.enabled) return undefined;
    const cached = this.#cache.get(peer.pin);
    if (!cached) return undefined;
    checkPin(peer.pin);
    return this.#caller(peer, cached);
  }

  /**
   * The same caller with its entries matched again: a stream holds its attestation for its whole
   * life, but entries come and go (a new entry for the caller's selectors shows on the stream).
   */
  rematch(caller: AttestedCaller): AttestedCaller {
    return Object.freeze({
      ...caller,
      entries: Object.freeze(this.#entries.match(caller.selectors)),
    });
  }

  async #runAttestors(
    peer: ConnectionPeer & { ok: true },
    signal: AbortSignal,
  ): Promise<Selector[]> {
    // One controller and one timer, not AbortSignal.any + AbortSignal.timeout: those cost a
    // dependent-signal registration, a weak timer and (on expiry) a DOMException per call.
    const bound = new AbortController();
    const onCancel = () => bound.abort(signal.reason);
    signal.addEventListener('abort', onCancel, { once: true });
    const timer = setTimeout(
      () => bound.abort(new UnavailableError('workload attestation timed out')),
      this.#timeoutMs,
    );
    try {
      if (signal.aborted) throw signal.reason;
      return await untilAborted(this.#selectors.attest(peer.caller, bound.signal), bound.signal);
    } catch (e) {
      if (signal.aborted) throw signal.reason;
      throw new UnavailableError('workload attestation failed', { cause: e });
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onCancel);
    }
  }

  /**
   * The attested caller, its entries matched now. A reused attestation (the same frozen
   * selectors) reuses its last answer while the matcher reports no change of entries and none of
   * the matched entries has expired since.
   */
  #caller(peer: ConnectionPeer & { ok: true }, selectors: readonly Selector[]): AttestedCaller {
    const generation = this.#entries.generation;
    const last = this.#last.get(peer.pin);
    if (
      last !== undefined &&
      generation !== undefined &&
      last.generation === generation &&
      last.caller.selectors === selectors &&
      this.#now() < last.validUntil
    ) {
      return last.caller;
    }
    const entries = Object.freeze(this.#entries.match(selectors));
    const caller: AttestedCaller = Object.freeze({
      process: peer.caller,
      transport: peer.transport,
      selectors,
      attributes: this.#attributesOf.get(selectors) ?? NO_ATTRIBUTES,
      entries,
    });
    if (generation !== undefined) {
      let validUntil = Infinity;
      for (const e of entries)
        if (e.expiresAt !== null) validUntil = Math.min(validUntil, e.expiresAt);
      this.#last.set(peer.pin, { caller, generation, validUntil });
    }
    return caller;
  }
}

/** Settles with `p`, or rejects with the abort reason when `signal` aborts first. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
