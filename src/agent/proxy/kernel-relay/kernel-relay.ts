// The kernel relay (docs/injection.md, "Kernel relay"): once a database handler has logged in
// upstream with the brokered credential, there is nothing left to inject — the session is raw
// bytes both ways. Instead of reading every message into the agent and writing it out again,
// the handler splices the two sockets: the kernel moves each skb from one socket's receive path
// to the other's send path (sockmap.ts) and the agent sees no more traffic.
//
// A handler splices only at a quiet point of its protocol — when neither side can have bytes in
// flight (PostgreSQL and MySQL: upstream login done, the client still waiting for its OK; Redis:
// the server's direction once AUTH is answered) — so no byte can overtake another.
//
// The client's direction goes further when the agent may take the workload's own socket
// (client-socket.ts): its bytes leave the client's send(2) straight for the upstream socket,
// never crossing loopback to the agent (the send program, sockmap.ts). What the client sends
// once it is out of the send maps (see "Bounded") crosses to the agent's end and is relayed by
// user space, after everything the kernel sent for it.
//
// Bounded: the kernel queues redirected bytes for a target socket without limit (a client that
// stops reading a large result, say, would have it pile up in kernel memory). So one timer
// looks at every target socket (one poll(2) for all of them); for a target that is not writable
// (its send buffer two-thirds full) it compares what the kernel redirected (the program's
// count) with what the target has been given (TCP_INFO): past BACKLOG_BYTES queued between
// them, the direction leaves the kernel for good — the source is paused, its route stopped
// (what the kernel took already goes on), and once the target has been given all of it, user
// space relays the rest with TCP's own flow control. What can pile up is BACKLOG_BYTES and what
// arrives in one interval. The interval is LOOK_MS while the relay is quiet and HOT_MS once the
// kernel has moved more than HOT_BYTES (all sessions together, one counter) since the last look:
// a timer's wake-up is not free (about 0.3 ms of CPU on a small VM), a map lookup per session
// per look would cost more than the look itself with a thousand sessions, and request–response
// traffic never comes near the limit.
// A client socket whose upstream is not writable at a look leaves the send maps the same way: a
// send the kernel cannot hand on fails with EAGAIN in the client's send(2) while the client's own
// socket stays writable, and a non-blocking client would retry at once, burning a core until
// the next look.
//
// The end of a spliced direction: a FIN is seen by user space while the kernel may still be
// passing on the last bytes (it sends redirected skbs from a work queue). `drained(from)` waits
// until the other socket has been given every byte the kernel redirected (its TCP_INFO
// counters against the program's count), so the relay half-closes or closes only after them.
// That FIN is seen at a look: a routed source is not read by the agent while spliced (quiet(),
// event-loop.ts — the kernel would otherwise wake the agent after every redirect), and the look
// that bounds the queues has it read again once it holds its end, an error or passed-up bytes.
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { closeFd, socketFd } from '../../attestation/peer-credentials.ts';
import { type ClientSocketRef, takeClientSocket } from './client-socket.ts';
import { stopPolling } from './event-loop.ts';
import { Sockmap } from './sockmap.ts';
import { loadLibc } from './libc.ts';
import { tcpBytes } from './tcp-bytes.ts';

/** How often target sockets are looked at, and how much may queue for one (see "Bounded" above). */
export const LOOK_MS = 100;
export const HOT_MS = 10;
export const HOT_BYTES = 1024n * 1024n;
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

/** The agent's end of a connection and where the workload's own end of it is. */
export interface SpliceClient {
  readonly accepted: Duplex;
  readonly socket: ClientSocketRef;
}

interface Direction {
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
interface Sender {
  readonly key: Buffer;
  readonly cookie: Buffer;
  readonly targetCookie: Buffer;
  readonly to: Duplex;
  readonly toFd: number;
}

interface NodeSocketCounters {
  readonly bytesRead: number;
  readonly bytesWritten: number;
  readonly writableLength: number;
  readonly readableLength: number;
  readonly destroyed: boolean;
  readonly encrypted?: boolean;
}

const counters = (s: Duplex) => s as unknown as NodeSocketCounters;

export class KernelRelay {
  readonly #map: Sockmap;
  readonly #watched = new Set<ConnectionSplice>();
  #timer: NodeJS.Timeout | undefined;
  #hot = false;
  /** The kernel's total redirected bytes at the last look. */
  #seen = 0n;

  private constructor(map: Sockmap) {
    this.#map = map;
  }

  /**
   * The relay when this process may load it (root: CAP_BPF, CAP_NET_ADMIN; a kernel with
   * sockmap); otherwise why not. `capacity`: sockets spliced at once (2 per connection).
   */
  static open(capacity: number): { relay: KernelRelay } | { reason: string } {
    try {
      return { relay: new KernelRelay(Sockmap.open(capacity)) };
    } catch (e) {
      return { reason: (e as Error).message };
    }
  }

  /**
   * Hands the directions to the kernel: bytes arriving on each `from` go out of its `to`; when
   * `client` names the workload's own socket and `from` is the agent's end of its connection,
   * the workload's sends go out of `to` directly instead. undefined (nothing changed) when a
   * socket is not plain TCP (TLS, a test's stream pair), has bytes buffered in user space, or the
   * map is full; the caller relays in user space then.
   */
  splice(
    directions: ReadonlyArray<readonly [from: Duplex, to: Duplex]>,
    client?: SpliceClient,
  ): Splice | undefined {
    const planned: Direction[] = [];
    for (const [from, to] of directions) {
      const fromFd = plainTcpFd(from);
      const toFd = plainTcpFd(to);
      if (fromFd === undefined || toFd === undefined) return undefined;
      if (counters(from).readableLength > 0 || counters(to).writableLength > 0) return undefined;
      try {
        planned.push({
          from,
          fromFd,
          key: this.#map.cookie(fromFd),
          to,
          toFd,
          writtenBase: tcpBytes(toFd).written - BigInt(counters(to).bytesWritten),
          degraded: false,
          quiet: false,
        });
      } catch {
        return undefined;
      }
    }
    const sends = client && planned.find((d) => d.from === client.accepted);
    const sender = sends && this.#routeSends(client.socket, sends);
    const routed = sender ? planned.filter((d) => d !== sends) : planned;
    try {
      for (const d of routed) this.#map.route(d.fromFd, d.key, d.toFd);
    } catch {
      // A full map: what was added is taken out again (nothing is in flight at a quiet point),
      // and the caller relays in user space.
      for (const d of routed) this.#map.unroute(d.key);
      if (sender) this.#map.unrouteSends(sender.key, sender.cookie, sender.targetCookie);
      return undefined;
    }
    const splice = new ConnectionSplice(this.#map, routed, sender, () => this.#unwatch(splice));
    this.#watch(splice);
    return splice;
  }

  /** The client's socket into the send maps, bound for `d.to`; undefined when it cannot be. */
  #routeSends(ref: ClientSocketRef, d: Direction): Sender | undefined {
    const taken = takeClientSocket(ref);
    if ('reason' in taken) return undefined;
    try {
      const sender: Sender = {
        key: taken.key,
        cookie: this.#map.cookie(taken.fd),
        targetCookie: this.#map.cookie(d.toFd),
        to: d.to,
        toFd: d.toFd,
      };
      this.#map.routeSends(taken.fd, taken.key, d.toFd);
      return sender;
    } catch {
      return undefined; // a full map, or another sender with this local address
    } finally {
      closeFd(taken.fd);
    }
  }

  #watch(splice: ConnectionSplice): void {
    this.#watched.add(splice);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#watched.size === 0) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#check();
        this.#schedule();
      },
      this.#hot ? HOT_MS : LOOK_MS,
    ).unref();
  }

  /**
   * One poll(2) over every watched socket: each target not writable is relieved of the kernel;
   * each quiet source with something for user space is read again.
   */
  #check(): void {
    const total = this.#map.totalRedirected();
    this.#hot = total - this.#seen > HOT_BYTES;
    this.#seen = total;
    const targets = [...this.#watched].flatMap((s) => s.targets());
    if (targets.length === 0) return;
    const fds = Buffer.alloc(8 * targets.length); // struct pollfd { int fd; short events, revents; }
    targets.forEach((t, i) => {
      fds.writeInt32LE(t.fd, 8 * i);
      fds.writeInt16LE(t.events, 8 * i + 4);
    });
    if (loadLibc().poll(fds, targets.length, 0) < 0) return;
    targets.forEach((t, i) => t.looked(fds.readUInt16LE(8 * i + 6)));
  }

  #unwatch(splice: ConnectionSplice): void {
    this.#watched.delete(splice);
    if (this.#watched.size === 0 && this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  close(): void {
    for (const s of this.#watched) s.release();
    this.#map.close();
  }
}

/** A socket the watch timer looks at (poll events), and what to do with what it saw. */
interface Target {
  readonly fd: number;
  readonly events: number;
  looked(revents: number): void;
}

class ConnectionSplice implements Splice {
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
    const handle = handleOf(from);
    if (!d || d.degraded || d.quiet || !handle || plainTcpFd(from) !== d.fromFd) return;
    from.pause();
    handle.reading = false;
    handle.readStop();
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

/** The part of a Node socket's libuv handle quiet() uses (as Node's own Socket does). */
interface NodeHandle {
  reading: boolean;
  readStart(): number;
  readStop(): number;
}

function handleOf(s: Duplex): NodeHandle | undefined {
  const h = (s as unknown as { _handle?: NodeHandle | null })._handle;
  return h && typeof h.readStop === 'function' ? h : undefined;
}

/**
 * Resumes a socket whose reads quiet() or a degrade stopped. Node's stream would not ask libuv
 * again by itself: it still counts the read it asked for before as pending.
 */
function readAgain(s: Duplex): void {
  const h = handleOf(s);
  if (h && !h.reading && !s.destroyed) {
    h.reading = true;
    h.readStart();
  }
  s.resume();
}

const writable = (revents: number): boolean => (revents & POLLOUT) !== 0;

/** The fd of a plain (not TLS), open TCP socket, else undefined. */
function plainTcpFd(s: Duplex): number | undefined {
  const c = counters(s);
  if (c.encrypted === true || c.destroyed) return undefined;
  try {
    return socketFd(s as Socket);
  } catch {
    return undefined;
  }
}
