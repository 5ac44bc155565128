// The kernel half of the kernel relay (docs/injection.md, "Kernel relay"): four BPF sockhashes,
// a hash map, a one-entry array and the two programs of programs.ts, loaded with bpf(2) through koffi (bpf.ts; as
// the proxy's SO_ORIGINAL_DST is read: no compiler, no libbpf).
//
// Receive side (sk_skb): `routes` holds the sockets whose incoming bytes are redirected (key: the
// socket's cookie); the verdict program is attached to it, so it runs for every skb they
// receive. `targets` maps the same cookie to the socket those bytes go to; it has no program, so
// a target's own incoming bytes take the normal path. The program looks up its socket's cookie
// (SO_COOKIE) in `targets` and redirects the skb to that socket's egress
// (bpf_sk_redirect_hash(skb, targets, &cookie, 0)), counting the bytes in `flow` (same key):
// what tells user space how much the kernel has still to hand on (kernel-relay.ts) — and in
// `total`, all sockets together: one lookup tells the watch timer how busy the relay is.
//
// Send side (sk_msg): `senders` holds client sockets — the workload's own end of a connection,
// taken from its process (client-socket.ts) — and has the message verdict program attached, so
// it runs in the client's own send(2). `sendTargets` maps the client socket's local address
// (family, port, address: what the program can read of its socket; unique in the map, BPF_NOEXIST)
// to the upstream socket, and the program hands the message to that socket's send path
// (bpf_msg_redirect_hash(msg, sendTargets, &key, 0)): synchronously, in the sender's system call,
// without crossing loopback to the agent.
//
// Either program answers SK_PASS when its lookup fails: the bytes take the normal path and user
// space relays them — never dropped. Sockets leave every map by themselves when they close.
//
// Needs CAP_BPF and CAP_NET_ADMIN (root) and a kernel with sockmap (Linux ≥ 5.13 for the
// parser-less BPF_SK_SKB_VERDICT attach type). Maps and programs live as long as the agent's file
// descriptors: nothing is pinned, nothing outlives the process.
import {
  attachProgram,
  BPF_ANY,
  BPF_MAP_TYPE_ARRAY,
  BPF_MAP_TYPE_HASH,
  BPF_NOEXIST,
  BPF_PROG_TYPE_SK_MSG,
  BPF_PROG_TYPE_SK_SKB,
  BPF_SK_MSG_VERDICT,
  BPF_SK_SKB_VERDICT,
  BpfError,
  createMap,
  createSockhash,
  mapDelete,
  mapLookup,
  mapUpdate,
} from '../../bpf/bpf.ts';
import { type Libc, loadLibc } from '../../bpf/libc.ts';
import { SEND_KEY_BYTES, sendProgram, verdictProgram } from './programs.ts';

const SOL_SOCKET = 1;
/** The one entry of `total` (an array map's key is its index). */
const TOTAL_KEY = Buffer.alloc(4);
const SO_COOKIE = 57;

/** The maps with their programs attached. */
export class Sockmap {
  readonly #c: Libc;
  readonly #fds: readonly number[];
  readonly #routes: number;
  readonly #targets: number;
  readonly #flow: number;
  readonly #total: number;
  readonly #senders: number;
  readonly #sendTargets: number;
  #closed = false;

  private constructor(c: Libc, fds: number[]) {
    this.#c = c;
    [this.#routes, this.#targets, this.#flow, this.#total, this.#senders, this.#sendTargets] =
      fds as [number, number, number, number, number, number];
    this.#fds = fds;
  }

  /** Creates the maps (room for `capacity` sockets each), loads and attaches the programs. Throws BpfError. */
  static open(capacity: number): Sockmap {
    if (process.platform !== 'linux') throw new Error(`not Linux (${process.platform})`);
    const c = loadLibc();
    const fds: number[] = [];
    try {
      const routes = createSockhash(c, 8, capacity, 'tessera_routes');
      fds.push(routes);
      const targets = createSockhash(c, 8, capacity, 'tessera_targets');
      fds.push(targets);
      const flow = createMap(c, BPF_MAP_TYPE_HASH, 8, 8, capacity, 'tessera_flow');
      fds.push(flow);
      const total = createMap(c, BPF_MAP_TYPE_ARRAY, 4, 8, 1, 'tessera_total');
      fds.push(total);
      const senders = createSockhash(c, SEND_KEY_BYTES, capacity, 'tessera_senders');
      fds.push(senders);
      const sendTargets = createSockhash(c, SEND_KEY_BYTES, capacity, 'tessera_sendto');
      fds.push(sendTargets);
      fds.push(
        attachProgram(
          c,
          BPF_PROG_TYPE_SK_SKB,
          BPF_SK_SKB_VERDICT,
          verdictProgram(flow, targets, total),
          routes,
          'tessera_relay',
        ),
      );
      fds.push(
        attachProgram(
          c,
          BPF_PROG_TYPE_SK_MSG,
          BPF_SK_MSG_VERDICT,
          sendProgram(sendTargets),
          senders,
          'tessera_send',
        ),
      );
      return new Sockmap(c, fds);
    } catch (e) {
      for (const fd of fds) c.close(fd);
      throw e;
    }
  }

  /** SO_COOKIE of a socket: the kernel's unique id for it. */
  cookie(fd: number): Buffer {
    const b = Buffer.alloc(8);
    const len = [8];
    if (this.#c.getsockopt(fd, SOL_SOCKET, SO_COOKIE, b, len) !== 0 || len[0] !== 8) {
      throw new BpfError('getsockopt(SO_COOKIE)', this.#c.koffi.errno());
    }
    return b;
  }

  /**
   * Bytes arriving on socket `fromFd` (cookie `key`) go out of socket `toFd` from now on.
   * Throws BpfError (a full map).
   */
  route(fromFd: number, key: Buffer, toFd: number): void {
    this.#open();
    const zero = Buffer.alloc(8);
    mapUpdate(this.#c, this.#flow, key, zero, BPF_NOEXIST);
    this.#update(this.#targets, key, toFd, BPF_ANY);
    this.#update(this.#routes, key, fromFd, BPF_ANY);
  }

  /**
   * Stops redirecting what the socket whose cookie is `key` receives: from now on it stays in
   * the socket's receive queue for user space (what was redirected before goes on to its
   * target; the counts stay readable). Never throws.
   */
  stopRoute(key: Buffer): void {
    if (!this.#closed) this.#delete(this.#routes, key);
  }

  /** Undoes route() for the socket whose cookie is `key` (open or closed). Never throws. */
  unroute(key: Buffer): void {
    if (this.#closed) return;
    for (const m of [this.#routes, this.#targets, this.#flow]) this.#delete(m, key);
  }

  /** Payload bytes the verdict program has redirected, all sockets together, since open(). */
  totalRedirected(): bigint {
    return this.#lookup(this.#total, TOTAL_KEY, 8)?.readBigUInt64LE(0) ?? 0n;
  }

  /** Payload bytes the verdict program redirected for a routed socket; undefined once unrouted. */
  redirected(key: Buffer): bigint | undefined {
    return this.#lookup(this.#flow, key, 8)?.readBigUInt64LE(0);
  }

  /**
   * What the client socket `senderFd` (its local address: `key`, client-socket.ts) sends goes
   * out of socket `toFd` from now on, in the client's own send(2). Throws (nothing changed) when
   * `key` is in either map already — a socket with the same local address is a sender, or a
   * closed sender's upstream is still open (a key names one socket and one target) — or when a
   * map is full. The target goes in first: the sender's bytes can only ever reach it.
   */
  routeSends(senderFd: number, key: Buffer, toFd: number): void {
    this.#open();
    if (this.#lookup(this.#senders, key, 8) || this.#lookup(this.#sendTargets, key, 8)) {
      throw new Error('a socket with this local address is spliced already');
    }
    this.#update(this.#sendTargets, key, toFd, BPF_NOEXIST);
    try {
      this.#update(this.#senders, key, senderFd, BPF_NOEXIST);
    } catch (e) {
      this.#delete(this.#sendTargets, key);
      throw e;
    }
  }

  /**
   * Undoes routeSends(): each entry only while it still holds the socket it was made for
   * (`senderCookie`, `targetCookie`) — once that socket has closed, the key may belong to
   * another connection. Never throws.
   */
  unrouteSends(key: Buffer, senderCookie: Buffer, targetCookie: Buffer): void {
    if (this.#closed) return;
    if (this.#lookup(this.#senders, key, 8)?.equals(senderCookie)) {
      this.#delete(this.#senders, key);
    }
    if (this.#lookup(this.#sendTargets, key, 8)?.equals(targetCookie)) {
      this.#delete(this.#sendTargets, key);
    }
  }

  #lookup(mapFd: number, key: Buffer, valueBytes: number): Buffer | undefined {
    return mapLookup(this.#c, mapFd, key, valueBytes);
  }

  #open(): void {
    if (this.#closed) throw new Error('the kernel relay is closed');
  }

  #delete(mapFd: number, key: Buffer): void {
    mapDelete(this.#c, mapFd, key);
  }

  #update(mapFd: number, key: Buffer, fd: number, flags: bigint): void {
    const value = Buffer.alloc(8);
    value.writeBigUInt64LE(BigInt(fd), 0);
    mapUpdate(this.#c, mapFd, key, value, flags);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const fd of this.#fds) this.#c.close(fd);
  }
}
