// One spliced connection (kernel-relay.ts says how the relay works): its directions in the
// kernel, the client socket sending straight to the upstream if there is one, and what the watch
// timer does at each look — a target that stopped reading with too much waiting takes its
// direction out of the kernel, a sender whose upstream is not writable leaves the send maps, a
// quiet source with something for user space is read again. The ends: drained() waits for the
// kernel's last bytes.
import type { Duplex } from 'node:stream';
import { stopPolling } from './event-loop.ts';
import { counters, plainTcpFd, readAgain, stopReading } from './node-socket.ts';
import type { Sockmap } from './sockmap.ts';
import { tcpBytes } from './tcp-bytes.ts';

/** How much may wait in the kernel for one target before its direction leaves the kernel. */
export const BACKLOG_BYTES = 4n * 1024n * 1024n;
const POLLIN = 0x1;
const POLLOUT = 0x4;
const POLLRDHUP = 0x2000;

/** Spliced directions of one connection. */
export interface Splice {
  /**
   * Resolves once the socket `from` is spliced to has been given every byte the kernel took
   * from `from` (true), or when that cannot be known, the sockets are gone, or it takes longer
   * than `timeoutMs` (false; Infinity: no time limit). True at once when `from` is not routed.
   */
  drained(from: Duplex, timeoutMs?: number): Promise<boolean>;
  /**
   * Called once `from` is piped to its target: while the kernel moves its bytes, the agent's
   * event loop stops watching it (event-loop.ts), and the watch timer has it read again at the
   * first look that finds something there for user space — its end, an error, bytes the kernel
   * passed up. No-op when `from` is not routed.
   */
  quiet(from: Duplex): void;
  /** Whether the client's own socket sent straight to the upstream at the splice (logs, tests). */
  readonly clientSends: boolean;
  /** Takes the connection's sockets out of every map (the connection is over). Idempotent. */
  release(): void;
}

export interface Direction {
  readonly from: Duplex;
  readonly fromFd: number;
  /** `from`'s cookie: its key in every map. */
  readonly key: Buffer;
  readonly to: Duplex;
  readonly toFd: number;
  /** Bytes `to` had been given (kernel) minus bytes user space had written to it, at the splice. */
  readonly writtenBase: bigint;
  /** Taken out of the kernel (its target was congested): user space relays it. */
  degraded: boolean;
  /** Not read by the agent now (quiet()): the watch timer looks for its end. */
  quiet: boolean;
}

/** A client socket in the send maps: its key there, its cookie, and the socket it sends to. */
export interface Sender {
  readonly key: Buffer;
  readonly cookie: Buffer;
  readonly targetCookie: Buffer;
  readonly to: Duplex;
  readonly toFd: number;
}

/** A socket the watch timer looks at (poll events), and what to do with what it saw. */
export interface Target {
  readonly fd: number;
  readonly events: number;
  looked(revents: number): void;
}

export class ConnectionSplice implements Splice {
  readonly #map: Sockmap;
  readonly #directions: readonly Direction[];
  readonly #unwatch: () => void;
  #sender: Sender | undefined;
  #released = false;
  readonly clientSends: boolean;

  constructor(
    map: Sockmap,
    directions: readonly Direction[],
    sender: Sender | undefined,
    unwatch: () => void,
  ) {
    this.#map = map;
    this.#directions = directions;
    this.#sender = sender;
    this.#unwatch = unwatch;
    this.clientSends = sender !== undefined;
  }

  async drained(from: Duplex, timeoutMs = 5_000): Promise<boolean> {
    const d = this.#direction(from);
    if (d === undefined) return true;
    const deadline = Date.now() + timeoutMs;
    for (let wait = 0; ; wait = Math.min(wait * 2 || 1, 50)) {
      const done = this.#passedOn(d);
      if (done !== undefined) return done;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#releaseSender();
    for (const d of this.#directions) this.#map.unroute(d.key);
    this.#unwatch();
  }

  quiet(from: Duplex): void {
    const d = this.#direction(from);
    if (!d || d.degraded || d.quiet || plainTcpFd(from) !== d.fromFd) return;
    if (!stopReading(from)) return;
    stopPolling(d.fromFd);
    d.quiet = true;
  }

  /**
   * The sockets the kernel sends to for this connection now, and the quiet sources (for the
   * watch timer).
   */
  targets(): Target[] {
    const t: Target[] = [];
    const s = this.#sender;
    if (s && plainTcpFd(s.to) === s.toFd) {
      t.push({ fd: s.toFd, events: POLLOUT, looked: (r) => writable(r) || this.#releaseSender() });
    }
    for (const d of this.#directions) {
      if (!d.degraded && plainTcpFd(d.to) === d.toFd) {
        t.push({
          fd: d.toFd,
          events: POLLOUT,
          looked: (r) => writable(r) || this.#checkBacklog(d),
        });
      }
      if (d.quiet && plainTcpFd(d.from) === d.fromFd) {
        t.push({
          fd: d.fromFd,
          events: POLLIN | POLLRDHUP,
          looked: (r) => r === 0 || this.#wake(d),
        });
      }
    }
    return t;
  }

  /** Has the agent read a quiet source again (its end, an error, or bytes the kernel passed up). */
  #wake(d: Direction): void {
    if (!d.quiet) return;
    d.quiet = false;
    readAgain(d.from);
  }

  #releaseSender(): void {
    const s = this.#sender;
    if (s === undefined) return;
    this.#map.unrouteSends(s.key, s.cookie, s.targetCookie);
    this.#sender = undefined;
  }

  /** Takes the direction out of the kernel when more than BACKLOG_BYTES wait for its target. */
  #checkBacklog(d: Direction): void {
    const redirected = this.#map.redirected(d.key);
    const given = this.#given(d);
    if (redirected !== undefined && given !== undefined && redirected - given <= BACKLOG_BYTES) {
      return;
    }
    void this.#degrade(d);
  }

  /**
   * Takes the direction out of the kernel: `from` paused, its route stopped, and — once its
   * target has everything the kernel redirected — resumed, so user space relays the rest.
   */
  async #degrade(d: Direction): Promise<void> {
    d.degraded = true;
    d.quiet = false; // read again below, once the kernel's bytes are through
    d.from.pause();
    this.#map.stopRoute(d.key);
    // Reading the socket's TCP_INFO takes its lock: a verdict that was still running on a skb
    // it received (in softirq, under that lock) has finished and been counted. (Closed
    // meanwhile: the relay is ending it.)
    if (plainTcpFd(d.from) === d.fromFd) {
      try {
        tcpBytes(d.fromFd);
      } catch {
        // As closed.
      }
    }
    await this.drained(d.from, Infinity);
    readAgain(d.from);
  }

  #direction(from: Duplex): Direction | undefined {
    return this.#directions.find((x) => x.from === from);
  }

  /** Bytes the kernel has given `to` since the splice; undefined while ours are still queued or it is gone. */
  #given(d: Direction): bigint | undefined {
    const to = counters(d.to);
    // User space's own writes to `to` must have reached the kernel before its count is exact.
    if (to.writableLength > 0 || plainTcpFd(d.to) !== d.toFd) return undefined;
    try {
      return tcpBytes(d.toFd).written - BigInt(to.bytesWritten) - d.writtenBase;
    } catch {
      return undefined;
    }
  }

  /** true when `to` has been given every redirected byte; false when that cannot be known; else undefined. */
  #passedOn(d: Direction): boolean | undefined {
    const redirected = this.#map.redirected(d.key);
    if (redirected === undefined || counters(d.to).destroyed) return false;
    const given = this.#given(d);
    if (given === undefined) return plainTcpFd(d.to) === d.toFd ? undefined : false;
    return given >= redirected ? true : undefined;
  }
}

const writable = (revents: number): boolean => (revents & POLLOUT) !== 0;
