// The kernel relay (docs/injection.md, "Kernel relay"): once a database handler has logged in
// upstream with the brokered credential, there is nothing left to inject — the session is raw
// bytes both ways. Instead of reading every message into the agent and writing it out again,
// the handler splices the two sockets: the kernel moves each skb from one socket's receive path
// to the other's send path (sockmap.ts) and the agent sees no more traffic.
//
// A handler splices only at a quiet point of its protocol — when neither side can have bytes in
// flight (PostgreSQL and MySQL: upstream login done, the client still waiting for its OK; Redis:
// the server's direction once AUTH is answered) — so no byte can overtake another. The user-space
// relay stays attached: bytes the kernel could not redirect come up to it as before.
//
// The end of a spliced direction: a FIN is seen by user space while the kernel may still be
// passing on the last bytes (it sends redirected skbs from a work queue). `drained(from)` waits
// until the other socket has been given every byte `from` received (TCP_INFO counters), so the
// relay half-closes or closes only after them.
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { socketFd } from '../../attestation/peer-credentials.ts';
import { Sockmap } from './sockmap.ts';
import { tcpBytes } from './tcp-bytes.ts';

export interface KernelRelayLog {
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
}

/** Spliced directions of one connection. */
export interface Splice {
  /**
   * Resolves once every byte `from` has received has been handed to the socket it is spliced
   * to (true), or when that cannot be known or takes longer than `timeoutMs` (false). Resolves
   * true at once for a socket that is not spliced.
   */
  drained(from: Duplex, timeoutMs?: number): Promise<boolean>;
}

interface Direction {
  readonly from: Duplex;
  readonly fromFd: number;
  readonly to: Duplex;
  readonly toFd: number;
  /** Bytes `from` had received (kernel) minus bytes read from it by user space, at the splice. */
  readonly receivedBase: bigint;
  /** Bytes `to` had been given (kernel) minus bytes user space had written to it, at the splice. */
  readonly writtenBase: bigint;
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
   * Hands the directions to the kernel: bytes arriving on each `from` go out of its `to`.
   * undefined (nothing changed) when a socket is not plain TCP (TLS, a test's stream pair), has
   * bytes buffered in user space, or the map is full; the caller relays in user space then.
   */
  splice(directions: ReadonlyArray<readonly [from: Duplex, to: Duplex]>): Splice | undefined {
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
          to,
          toFd,
          receivedBase: tcpBytes(fromFd).received - BigInt(counters(from).bytesRead),
          writtenBase: tcpBytes(toFd).written - BigInt(counters(to).bytesWritten),
        });
      } catch {
        return undefined;
      }
    }
    try {
      for (const d of planned) this.#map.route(d.fromFd, d.toFd);
    } catch {
      // A full map: what was added is taken out again (nothing is in flight at a quiet point),
      // and the caller relays in user space.
      for (const d of planned) this.#map.unroute(d.fromFd);
      return undefined;
    }
    return new ConnectionSplice(planned);
  }

  close(): void {
    this.#map.close();
  }
}

class ConnectionSplice implements Splice {
  readonly #directions: readonly Direction[];
  readonly #drains = new Map<Duplex, Promise<boolean>>();

  constructor(directions: readonly Direction[]) {
    this.#directions = directions;
  }

  drained(from: Duplex, timeoutMs = 5_000): Promise<boolean> {
    let p = this.#drains.get(from);
    if (p === undefined) {
      p = drain(
        this.#directions.find((x) => x.from === from),
        timeoutMs,
      );
      this.#drains.set(from, p);
    }
    return p;
  }
}

async function drain(d: Direction | undefined, timeoutMs: number): Promise<boolean> {
  if (d === undefined) return true;
  // `from` has ended: what it received is final. Read it now, while its fd is surely its own
  // (a closed socket's fd number may already belong to another).
  if (plainTcpFd(d.from) !== d.fromFd) return false;
  let target: bigint;
  try {
    target = tcpBytes(d.fromFd).received - BigInt(counters(d.from).bytesRead) - d.receivedBase;
  } catch {
    return false;
  }
  const deadline = Date.now() + timeoutMs;
  for (let wait = 0; ; wait = Math.min(wait * 2 || 1, 50)) {
    const done = passedOn(d, target);
    if (done !== undefined) return done;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, wait));
  }
}

/** true when `to` has been given `target` bytes since the splice; false when it is gone; else undefined. */
function passedOn(d: Direction, target: bigint): boolean | undefined {
  const to = counters(d.to);
  // User space's own writes to `to` must have reached the kernel before its count is exact.
  if (to.writableLength > 0 && !to.destroyed) return undefined;
  if (plainTcpFd(d.to) !== d.toFd) return false;
  try {
    return tcpBytes(d.toFd).written - BigInt(to.bytesWritten) - d.writtenBase >= target
      ? true
      : undefined;
  } catch {
    return false;
  }
}

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
