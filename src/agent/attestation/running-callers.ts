// Callers re-checked while they hold a stream open (docs/posture.md "Re-checked while running").
// A FetchX509SVID stream is attested when it starts and may stay open for hours; meanwhile its
// process may exec() another binary, map a new library, change its credentials or cgroup. Here
// one timer for all open streams reads each watched process's fingerprint (attestation-cache.ts:
// executable, credentials, cgroup, executable mappings) every `intervalMs`; when it differs from
// the one the stream's attestation was made under, the process is attested afresh and, when its
// selectors or attributes changed, the stream hears of its new self. When the process has gone,
// or cannot be attested again, the stream hears the error it ends with.
//
// Cost: the fingerprint is read once per process (pin) and tick, however many streams it holds
// open; it is the same read a reused attestation costs (held procfs files, a maps read only when
// the executable mappings' size moved). Ticks run in slices, yielding to the event loop between
// them, and the next tick is scheduled when one is done: a slow tick delays the next, it never
// piles up.
import { attributesKey } from '../../core/attributes.ts';
import { formatSelector } from '../../core/selector.ts';
import type { AttestedCaller } from './caller.ts';
import type { ConnectionPeer } from './connection-peer.ts';
import { checkPin, type ProcessPin } from './process-pin.ts';

type PinnedPeer = ConnectionPeer & { readonly ok: true };

/** What a watching stream hears: its caller as it is now, or the error to end with. */
export type CallerChange = { readonly caller: AttestedCaller } | { readonly error: Error };

export interface RunningCallersDeps {
  /** Between two reads of a watched process. */
  readonly intervalMs: number;
  /** The process's fingerprint now; undefined when it cannot be read. */
  fingerprint(pin: ProcessPin): string | undefined;
  /** A fresh attestation, and the fingerprint read before it (undefined: unreadable). */
  reattest(
    peer: PinnedPeer,
    signal: AbortSignal,
  ): Promise<{ readonly caller: AttestedCaller; readonly before: string | undefined }>;
  readonly log?: (fields: Record<string, unknown>, msg: string) => void;
}

interface Watcher {
  readonly peer: PinnedPeer;
  /** The fingerprint `caller` was attested under; undefined: unknown, attest again. */
  baseline: string | undefined;
  caller: AttestedCaller;
  readonly listener: (change: CallerChange) => void;
}

/** Processes read per slice of a tick before yielding to the event loop. */
const SLICE = 64;

/** A re-attestation is bounded by the service's own timeout; nobody cancels it. */
const NEVER = new AbortController().signal;

export class RunningCallers {
  readonly #d: RunningCallersDeps;
  readonly #watchers = new Set<Watcher>();
  /** Pins being attested again (a tick skips them). */
  readonly #busy = new WeakSet<ProcessPin>();
  #timer: NodeJS.Timeout | undefined;
  #ticking = false;

  constructor(d: RunningCallersDeps) {
    this.#d = d;
  }

  /** Streams watched now (tests, metrics). */
  get size(): number {
    return this.#watchers.size;
  }

  /**
   * Watches the caller of a stream from now on; `baseline` is the fingerprint its attestation
   * was made under. The listener hears each change of selectors or attributes, and at most one
   * error, after which it is no longer called. Returns the function that stops watching.
   */
  watch(
    peer: PinnedPeer,
    caller: AttestedCaller,
    baseline: string | undefined,
    listener: (change: CallerChange) => void,
  ): () => void {
    const w: Watcher = { peer, baseline, caller, listener };
    this.#watchers.add(w);
    this.#schedule();
    return () => {
      this.#watchers.delete(w);
      if (this.#watchers.size === 0 && this.#timer !== undefined) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
    };
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#ticking || this.#watchers.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#ticking = true;
      this.tick()
        .catch((e: unknown) =>
          this.#d.log?.({ err: (e as Error).message }, 'could not re-check running callers'),
        )
        .finally(() => {
          this.#ticking = false;
          this.#schedule();
        });
    }, this.#d.intervalMs);
    this.#timer.unref();
  }

  /** One pass over every watched process (exported for tests; the timer calls it). */
  async tick(): Promise<void> {
    const byPin = new Map<ProcessPin, Watcher[]>();
    for (const w of this.#watchers) {
      const group = byPin.get(w.peer.pin);
      if (group) group.push(w);
      else byPin.set(w.peer.pin, [w]);
    }
    let n = 0;
    for (const [pin, group] of byPin) {
      if (++n % SLICE === 0) await new Promise((r) => setImmediate(r));
      if (this.#busy.has(pin)) continue;
      this.#check(pin, group);
    }
  }

  #check(pin: ProcessPin, group: Watcher[]): void {
    const live = group.filter((w) => this.#watchers.has(w));
    const now = this.#d.fingerprint(pin);
    if (now === undefined) {
      try {
        checkPin(pin);
      } catch (e) {
        // The process has gone (or its connection closed): its streams end.
        return this.#end(live, e as Error);
      }
    }
    // Unknown before and unreadable now (a process we may not inspect): nothing to compare.
    const stale = live.filter(
      (w) => w.baseline !== now && !(now === undefined && w.baseline === undefined),
    );
    if (stale.length === 0) return;
    this.#busy.add(pin);
    const peer = stale[0]!.peer;
    void this.#d
      .reattest(peer, NEVER)
      .then(({ caller, before }) => {
        for (const w of stale) {
          if (!this.#watchers.has(w)) continue;
          w.baseline = before;
          if (sameIdentity(w.caller, caller)) continue;
          w.caller = caller;
          w.listener({ caller });
        }
      })
      .catch((e: unknown) => {
        this.#d.log?.(
          { pid: peer.caller.pid, err: (e as Error).message },
          'caller re-check failed',
        );
        this.#end(stale, e as Error);
      })
      .finally(() => this.#busy.delete(pin));
  }

  #end(watchers: readonly Watcher[], error: Error): void {
    for (const w of watchers) {
      if (!this.#watchers.delete(w)) continue;
      w.listener({ error });
    }
  }
}

/** The same selectors (as a set) and attributes: nothing a stream's answer depends on changed. */
export function sameIdentity(a: AttestedCaller, b: AttestedCaller): boolean {
  if (a.selectors === b.selectors) return true;
  const sel = (c: AttestedCaller) => JSON.stringify(c.selectors.map(formatSelector).sort());
  return (
    sel(a) === sel(b) && attributesKey(a.attributes ?? {}) === attributesKey(b.attributes ?? {})
  );
}
