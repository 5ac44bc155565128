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
import { closeFd } from '../../attestation/peer-credentials.ts';
import { type ClientSocketRef, takeClientSocket } from './client-socket.ts';
import { ConnectionSplice, type Direction, type Sender, type Splice } from './connection-splice.ts';
import { loadLibc } from '../../bpf/libc.ts';
import { counters, plainTcpFd } from './node-socket.ts';
import { Sockmap } from './sockmap.ts';
import { tcpBytes } from './tcp-bytes.ts';

export { BACKLOG_BYTES, type Splice } from './connection-splice.ts';

/** How often target sockets are looked at (see "Bounded" above). */
export const LOOK_MS = 100;
export const HOT_MS = 10;
export const HOT_BYTES = 1024n * 1024n;

/** The agent's end of a connection and where the workload's own end of it is. */
export interface SpliceClient {
  readonly accepted: Duplex;
  readonly socket: ClientSocketRef;
}

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
