// The kernel half of the kernel relay (docs/injection.md, "Kernel relay"): four BPF sockhashes,
// a hash map and two programs, loaded with bpf(2) through koffi (as the proxy's SO_ORIGINAL_DST
// is read: no compiler, no libbpf).
//
// Receive side (sk_skb): `routes` holds the sockets whose incoming bytes are redirected (key: the
// socket's cookie); the verdict program is attached to it, so it runs for every skb they
// receive. `targets` maps the same cookie to the socket those bytes go to; it has no program, so
// a target's own incoming bytes take the normal path. The program looks up its socket's cookie
// (SO_COOKIE) in `targets` and redirects the skb to that socket's egress
// (bpf_sk_redirect_hash(skb, targets, &cookie, 0)), counting the bytes in `flow` (same key):
// what tells user space how much the kernel has still to hand on (kernel-relay.ts).
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
import { type Libc, loadLibc } from './libc.ts';

const SYS_BPF = 321; // x86_64; see syscallNumber()
const BPF_MAP_CREATE = 0;
const BPF_MAP_LOOKUP_ELEM = 1;
const BPF_MAP_UPDATE_ELEM = 2;
const BPF_MAP_DELETE_ELEM = 3;
const BPF_PROG_LOAD = 5;
const BPF_PROG_ATTACH = 8;
const BPF_MAP_TYPE_HASH = 1;
const BPF_MAP_TYPE_SOCKHASH = 18;
const BPF_PROG_TYPE_SK_SKB = 14;
const BPF_PROG_TYPE_SK_MSG = 16;
const BPF_SK_MSG_VERDICT = 7;
const BPF_SK_SKB_VERDICT = 38;
const BPF_ANY = 0n;
const BPF_NOEXIST = 1n;
/** bpf_func_id values (include/uapi/linux/bpf.h). */
const FN_MAP_LOOKUP_ELEM = 1;
const FN_GET_SOCKET_COOKIE = 46;
const FN_MSG_REDIRECT_HASH = 71;
const FN_SK_REDIRECT_HASH = 72;
const SK_PASS = 1;
const SOL_SOCKET = 1;
const SO_COOKIE = 57;

/**
 * bpf(2)'s number: x86_64 and arm64 are the architectures the agent's koffi calls are checked on.
 * Elsewhere open() fails with this reason, the agent logs `kernel relay off` and relays in user
 * space (docs/injection.md).
 */
function syscallNumber(): number {
  if (process.arch === 'x64') return SYS_BPF;
  if (process.arch === 'arm64') return 280;
  throw new Error(`the kernel relay supports x64 and arm64, not ${process.arch}`);
}

const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM (needs CAP_BPF and CAP_NET_ADMIN)',
  7: 'E2BIG',
  9: 'EBADF',
  12: 'ENOMEM',
  13: 'EACCES',
  17: 'EEXIST',
  22: 'EINVAL (kernel without sockmap support?)',
  28: 'ENOSPC',
  38: 'ENOSYS (kernel without bpf)',
  95: 'EOPNOTSUPP',
};

export class BpfError extends Error {
  readonly errno: number;
  constructor(what: string, errno: number, detail = '') {
    super(`${what}: ${ERRNO_NAMES[errno] ?? `errno ${errno}`}${detail}`);
    this.errno = errno;
  }
}

function bpf(c: Libc, cmd: number, attr: Buffer, what: string, log?: Buffer): number {
  const r = Number(
    c.syscall(syscallNumber(), 'int', cmd, 'void *', attr, 'unsigned int', attr.length),
  );
  if (r < 0) {
    const detail = log
      ? `: ${log
          .toString('utf8')
          .replace(/\0[\s\S]*$/, '')
          .trim()}`
      : '';
    throw new BpfError(what, c.koffi.errno(), detail);
  }
  return r;
}

/** One eBPF instruction: opcode, dst/src registers, 16-bit offset, 32-bit immediate. */
function insn(code: number, dst: number, src: number, off: number, imm: number): Buffer {
  const b = Buffer.alloc(8);
  b[0] = code;
  b[1] = (dst & 0xf) | ((src & 0xf) << 4);
  b.writeInt16LE(off, 2);
  b.writeInt32LE(imm, 4);
  return b;
}

const MOV64_REG = 0xbf;
const MOV64_IMM = 0xb7;
const ADD64_IMM = 0x07;
const STX_DW = 0x7b;
const STX_W = 0x63;
const LDX_DW = 0x79;
const ADD64_REG = 0x0f;
const JEQ_IMM = 0x15;
const ST_DW = 0x7a;
const LDX_W = 0x61;
const JA = 0x05;
const LD_IMM64 = 0x18;
const CALL = 0x85;
const JNE_IMM = 0x55;
const EXIT = 0x95;
const PSEUDO_MAP_FD = 1;
const R0 = 0;
const R1 = 1;
const R2 = 2;
const R3 = 3;
const R4 = 4;
const R6 = 6;
const R7 = 7;
const R9 = 9;
const FP = 10;
const AF_INET = 2;
const AF_INET6 = 10;

/**
 * The verdict program, per skb a routed socket receives (flow: its entry, by cookie; len: the
 * skb's payload):
 *   if no flow: return SK_PASS;                                  // not routed (any more)
 *   if bpf_sk_redirect_hash(skb, targets, &cookie, 0) == SK_PASS:
 *     flow.redirected += len; return SK_PASS;                    // redirected
 *   return SK_PASS;                                              // no target: user space
 */
function verdictProgram(flowFd: number, targetsFd: number): Buffer {
  const pass = 22;
  const code: Buffer[] = [
    /* 0 */ insn(MOV64_REG, R6, R1, 0, 0),
    /* 1 */ insn(CALL, 0, 0, 0, FN_GET_SOCKET_COOKIE),
    /* 2 */ insn(STX_DW, FP, R0, -8, 0),
    /* 3 */ insn(LD_IMM64, R1, PSEUDO_MAP_FD, 0, flowFd),
    /* 4 */ insn(0, 0, 0, 0, 0),
    /* 5 */ insn(MOV64_REG, R2, FP, 0, 0),
    /* 6 */ insn(ADD64_IMM, R2, 0, 0, -8),
    /* 7 */ insn(CALL, 0, 0, 0, FN_MAP_LOOKUP_ELEM),
    /* 8 */ insn(JEQ_IMM, R0, 0, pass - 9, 0),
    /* 9 */ insn(MOV64_REG, R7, R0, 0, 0),
    /* 10 */ insn(LDX_W, R9, R6, SKB_LEN, 0),
    /* 11 */ insn(MOV64_REG, R1, R6, 0, 0),
    /* 12 */ insn(LD_IMM64, R2, PSEUDO_MAP_FD, 0, targetsFd),
    /* 13 */ insn(0, 0, 0, 0, 0),
    /* 14 */ insn(MOV64_REG, R3, FP, 0, 0),
    /* 15 */ insn(ADD64_IMM, R3, 0, 0, -8),
    /* 16 */ insn(MOV64_IMM, R4, 0, 0, 0),
    /* 17 */ insn(CALL, 0, 0, 0, FN_SK_REDIRECT_HASH),
    /* 18 */ insn(JEQ_IMM, R0, 0, pass - 19, 0),
    /* 19 */ insn(LDX_DW, R1, R7, 0, 0),
    /* 20 */ insn(ADD64_REG, R1, R9, 0, 0),
    /* 21 */ insn(STX_DW, R7, R1, 0, 0),
    /* 22 pass */ insn(MOV64_IMM, R0, 0, 0, SK_PASS),
    /* 23 */ insn(EXIT, 0, 0, 0, 0),
  ];
  return Buffer.concat(code);
}

/** struct __sk_buff: len (u32) first. */
const SKB_LEN = 0;

/** struct sk_msg_md (include/uapi/linux/bpf.h): offsets of the fields the send program reads. */
const MSG_FAMILY = 16;
const MSG_LOCAL_IP4 = 24;
const MSG_LOCAL_IP6 = 44;
const MSG_LOCAL_PORT = 64;

/** Key of `sendTargets`: family (u32), local port (u32, host order), local address (16 bytes). */
export const SEND_KEY_BYTES = 24;

/**
 * The send program, in the client's send(2):
 *   key = { family, local_port, local_ip4 or local_ip6 } at fp - 24 (zero-filled);
 *   r0 = bpf_msg_redirect_hash(msg, sendTargets, &key, 0);   // SK_PASS when redirected
 *   return r0 != SK_DROP ? r0 : SK_PASS;                   // no upstream: the normal path
 */
function sendProgram(sendTargetsFd: number): Buffer {
  const ip6 = [0, 1, 2, 3].flatMap((i) => [
    insn(LDX_W, R2, R6, MSG_LOCAL_IP6 + 4 * i, 0),
    insn(STX_W, FP, R2, -16 + 4 * i, 0),
  ]);
  return Buffer.concat([
    insn(MOV64_REG, R6, R1, 0, 0),
    insn(ST_DW, FP, 0, -24, 0),
    insn(ST_DW, FP, 0, -16, 0),
    insn(ST_DW, FP, 0, -8, 0),
    insn(LDX_W, R7, R6, MSG_FAMILY, 0),
    insn(STX_W, FP, R7, -24, 0),
    insn(LDX_W, R2, R6, MSG_LOCAL_PORT, 0),
    insn(STX_W, FP, R2, -20, 0),
    insn(JNE_IMM, R7, 0, 3, AF_INET), // → the IPv6 branch
    insn(LDX_W, R2, R6, MSG_LOCAL_IP4, 0),
    insn(STX_W, FP, R2, -16, 0),
    insn(JA, 0, 0, ip6.length + 1, 0), // → the lookup
    insn(JNE_IMM, R7, 0, ip6.length, AF_INET6), // neither: an all-zero address, never a key
    ...ip6,
    insn(MOV64_REG, R1, R6, 0, 0),
    insn(LD_IMM64, R2, PSEUDO_MAP_FD, 0, sendTargetsFd),
    insn(0, 0, 0, 0, 0),
    insn(MOV64_REG, R3, FP, 0, 0),
    insn(ADD64_IMM, R3, 0, 0, -24),
    insn(MOV64_IMM, R4, 0, 0, 0),
    insn(CALL, 0, 0, 0, FN_MSG_REDIRECT_HASH),
    insn(JNE_IMM, R0, 0, 1, 0),
    insn(MOV64_IMM, R0, 0, 0, SK_PASS),
    insn(EXIT, 0, 0, 0, 0),
  ]);
}

/** Values are written as a socket fd (u64) and read back as the socket's cookie. */
function createSockhash(c: Libc, keyBytes: number, capacity: number, name: string): number {
  return createMap(c, BPF_MAP_TYPE_SOCKHASH, keyBytes, 8, capacity, name);
}

function createMap(
  c: Libc,
  type: number,
  keyBytes: number,
  valueBytes: number,
  capacity: number,
  name: string,
): number {
  const map = Buffer.alloc(72);
  map.writeUInt32LE(type, 0);
  map.writeUInt32LE(keyBytes, 4);
  map.writeUInt32LE(valueBytes, 8);
  map.writeUInt32LE(capacity, 12);
  Buffer.from(name).copy(map, 28); // map_name
  return bpf(c, BPF_MAP_CREATE, map, `creating the ${name} map`);
}

/** Loads `code` and attaches it to `mapFd`; the program's fd. */
function attachProgram(
  c: Libc,
  type: number,
  attachType: number,
  code: Buffer,
  mapFd: number,
  name: string,
): number {
  const license = Buffer.from('GPL\0');
  const log = Buffer.alloc(16_384);
  const prog = Buffer.alloc(128);
  prog.writeUInt32LE(type, 0);
  prog.writeUInt32LE(code.length / 8, 4);
  prog.writeBigUInt64LE(BigInt(c.koffi.address(code) as bigint), 8);
  prog.writeBigUInt64LE(BigInt(c.koffi.address(license) as bigint), 16);
  prog.writeUInt32LE(1, 24); // log level: the verifier says why, if it refuses
  prog.writeUInt32LE(log.length, 28);
  prog.writeBigUInt64LE(BigInt(c.koffi.address(log) as bigint), 32);
  Buffer.from(name).copy(prog, 48); // prog_name
  const progFd = bpf(c, BPF_PROG_LOAD, prog, `loading the ${name} program`, log);
  try {
    const attach = Buffer.alloc(20);
    attach.writeUInt32LE(mapFd, 0);
    attach.writeUInt32LE(progFd, 4);
    attach.writeUInt32LE(attachType, 8);
    bpf(c, BPF_PROG_ATTACH, attach, `attaching the ${name} program`);
    return progFd;
  } catch (e) {
    c.close(progFd);
    throw e;
  }
}

/** The maps with their programs attached. */
export class Sockmap {
  readonly #c: Libc;
  readonly #fds: readonly number[];
  readonly #routes: number;
  readonly #targets: number;
  readonly #flow: number;
  readonly #senders: number;
  readonly #sendTargets: number;
  #closed = false;

  private constructor(c: Libc, fds: number[]) {
    this.#c = c;
    [this.#routes, this.#targets, this.#flow, this.#senders, this.#sendTargets] = fds as [
      number,
      number,
      number,
      number,
      number,
    ];
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
      const senders = createSockhash(c, SEND_KEY_BYTES, capacity, 'tessera_senders');
      fds.push(senders);
      const sendTargets = createSockhash(c, SEND_KEY_BYTES, capacity, 'tessera_sendto');
      fds.push(sendTargets);
      fds.push(
        attachProgram(
          c,
          BPF_PROG_TYPE_SK_SKB,
          BPF_SK_SKB_VERDICT,
          verdictProgram(flow, targets),
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
    this.#set(this.#flow, key, zero, BPF_NOEXIST);
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

  /** The value under `key` in `mapFd` (a sockhash's: the socket's cookie), or undefined. */
  #lookup(mapFd: number, key: Buffer, valueBytes: number): Buffer | undefined {
    const value = Buffer.alloc(valueBytes);
    const attr = Buffer.alloc(32);
    attr.writeUInt32LE(mapFd, 0);
    attr.writeBigUInt64LE(BigInt(this.#c.koffi.address(key) as bigint), 8);
    attr.writeBigUInt64LE(BigInt(this.#c.koffi.address(value) as bigint), 16);
    try {
      bpf(this.#c, BPF_MAP_LOOKUP_ELEM, attr, 'looking up a map');
      return value;
    } catch {
      return undefined;
    }
  }

  #open(): void {
    if (this.#closed) throw new Error('the kernel relay is closed');
  }

  #delete(mapFd: number, key: Buffer): void {
    const attr = Buffer.alloc(32);
    attr.writeUInt32LE(mapFd, 0);
    attr.writeBigUInt64LE(BigInt(this.#c.koffi.address(key) as bigint), 8);
    try {
      bpf(this.#c, BPF_MAP_DELETE_ELEM, attr, 'removing a socket from a sockhash');
    } catch {
      // Not there (the insert never happened, or the socket closed): nothing to undo.
    }
  }

  #update(mapFd: number, key: Buffer, fd: number, flags: bigint): void {
    const value = Buffer.alloc(8);
    value.writeBigUInt64LE(BigInt(fd), 0);
    this.#set(mapFd, key, value, flags);
  }

  #set(mapFd: number, key: Buffer, value: Buffer, flags: bigint): void {
    const attr = Buffer.alloc(32);
    attr.writeUInt32LE(mapFd, 0);
    attr.writeBigUInt64LE(BigInt(this.#c.koffi.address(key) as bigint), 8);
    attr.writeBigUInt64LE(BigInt(this.#c.koffi.address(value) as bigint), 16);
    attr.writeBigUInt64LE(flags, 24);
    bpf(this.#c, BPF_MAP_UPDATE_ELEM, attr, 'updating a map');
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const fd of this.#fds) this.#c.close(fd);
  }
}
