// The kernel half of the kernel relay (docs/injection.md, "Kernel relay"): two BPF sockhashes
// and one sk_skb verdict program, loaded with bpf(2) through koffi (as the proxy's
// SO_ORIGINAL_DST is read: no compiler, no libbpf).
//
// `routes` holds the sockets whose incoming bytes are redirected (key: the socket's cookie); the
// verdict program is attached to it, so it runs for every skb they receive. `targets` maps the
// same cookie to the socket those bytes go to; it has no program, so a target's own incoming
// bytes take the normal path. The program looks up its socket's cookie (SO_COOKIE) in
// `targets` and redirects the skb to that socket's egress (bpf_sk_redirect_hash(skb, targets,
// &cookie, 0)); when the lookup fails it answers SK_PASS: the bytes land in the socket's own
// receive queue and user space relays them — never dropped. Sockets leave both maps by
// themselves when they close.
//
// Needs CAP_BPF and CAP_NET_ADMIN (root) and a kernel with sockmap (Linux ≥ 5.13 for the
// parser-less BPF_SK_SKB_VERDICT attach type). Maps and program live as long as the agent's file
// descriptors: nothing is pinned, nothing outlives the process.
import { type Libc, loadLibc } from './libc.ts';

const SYS_BPF = 321; // x86_64; see syscallNumber()
const BPF_MAP_CREATE = 0;
const BPF_MAP_UPDATE_ELEM = 2;
const BPF_MAP_DELETE_ELEM = 3;
const BPF_PROG_LOAD = 5;
const BPF_PROG_ATTACH = 8;
const BPF_MAP_TYPE_SOCKHASH = 18;
const BPF_PROG_TYPE_SK_SKB = 14;
const BPF_SK_SKB_VERDICT = 38;
const BPF_ANY = 0n;
/** bpf_func_id values (include/uapi/linux/bpf.h). */
const FN_GET_SOCKET_COOKIE = 46;
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
const FP = 10;

/**
 * The verdict program:
 *   r6 = ctx; cookie = bpf_get_socket_cookie(ctx); *(u64 *)(fp - 8) = cookie;
 *   r0 = bpf_sk_redirect_hash(ctx, targets, fp - 8, 0);   // SK_PASS when redirected
 *   return r0 != SK_DROP ? r0 : SK_PASS;               // no peer: user space gets the bytes
 */
function verdictProgram(targetsFd: number): Buffer {
  return Buffer.concat([
    insn(MOV64_REG, R6, R1, 0, 0),
    insn(CALL, 0, 0, 0, FN_GET_SOCKET_COOKIE),
    insn(STX_DW, FP, R0, -8, 0),
    insn(MOV64_REG, R1, R6, 0, 0),
    insn(LD_IMM64, R2, PSEUDO_MAP_FD, 0, targetsFd),
    insn(0, 0, 0, 0, 0),
    insn(MOV64_REG, R3, FP, 0, 0),
    insn(ADD64_IMM, R3, 0, 0, -8),
    insn(MOV64_IMM, R4, 0, 0, 0),
    insn(CALL, 0, 0, 0, FN_SK_REDIRECT_HASH),
    insn(JNE_IMM, R0, 0, 1, 0),
    insn(MOV64_IMM, R0, 0, 0, SK_PASS),
    insn(EXIT, 0, 0, 0, 0),
  ]);
}

function createSockhash(c: Libc, capacity: number, name: string): number {
  const map = Buffer.alloc(72);
  map.writeUInt32LE(BPF_MAP_TYPE_SOCKHASH, 0);
  map.writeUInt32LE(8, 4); // key: a socket cookie
  map.writeUInt32LE(4, 8); // value: a socket fd
  map.writeUInt32LE(capacity, 12);
  Buffer.from(name).copy(map, 28); // map_name
  return bpf(c, BPF_MAP_CREATE, map, `creating the ${name} sockhash`);
}

/** The two sockhashes with the verdict program attached to `routes`. */
export class Sockmap {
  readonly #c: Libc;
  readonly #fds: readonly number[];
  readonly #routes: number;
  readonly #targets: number;
  #closed = false;

  private constructor(c: Libc, routes: number, targets: number, prog: number) {
    this.#c = c;
    this.#routes = routes;
    this.#targets = targets;
    this.#fds = [prog, routes, targets];
  }

  /** Creates the maps (room for `capacity` sockets each), loads and attaches the program. Throws BpfError. */
  static open(capacity: number): Sockmap {
    if (process.platform !== 'linux') throw new Error(`not Linux (${process.platform})`);
    const c = loadLibc();
    const fds: number[] = [];
    try {
      const routes = createSockhash(c, capacity, 'tessera_routes');
      fds.push(routes);
      const targets = createSockhash(c, capacity, 'tessera_targets');
      fds.push(targets);
      const code = verdictProgram(targets);
      const license = Buffer.from('GPL\0');
      const log = Buffer.alloc(16_384);
      const prog = Buffer.alloc(128);
      prog.writeUInt32LE(BPF_PROG_TYPE_SK_SKB, 0);
      prog.writeUInt32LE(code.length / 8, 4);
      prog.writeBigUInt64LE(BigInt(c.koffi.address(code) as bigint), 8);
      prog.writeBigUInt64LE(BigInt(c.koffi.address(license) as bigint), 16);
      prog.writeUInt32LE(1, 24); // log level: the verifier says why, if it refuses
      prog.writeUInt32LE(log.length, 28);
      prog.writeBigUInt64LE(BigInt(c.koffi.address(log) as bigint), 32);
      Buffer.from('tessera_relay').copy(prog, 48); // prog_name
      const progFd = bpf(c, BPF_PROG_LOAD, prog, 'loading the verdict program', log);
      fds.push(progFd);
      const attach = Buffer.alloc(20);
      attach.writeUInt32LE(routes, 0);
      attach.writeUInt32LE(progFd, 4);
      attach.writeUInt32LE(BPF_SK_SKB_VERDICT, 8);
      bpf(c, BPF_PROG_ATTACH, attach, 'attaching the verdict program');
      return new Sockmap(c, routes, targets, progFd);
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

  /** Bytes arriving on socket `fromFd` go out of socket `toFd` from now on. Throws BpfError (a full map). */
  route(fromFd: number, toFd: number): void {
    if (this.#closed) throw new Error('the kernel relay is closed');
    const key = this.cookie(fromFd);
    this.#update(this.#targets, key, toFd);
    this.#update(this.#routes, key, fromFd);
  }

  /** Undoes route(): bytes arriving on `fromFd` take the normal path again. Never throws. */
  unroute(fromFd: number): void {
    if (this.#closed) return;
    let key: Buffer;
    try {
      key = this.cookie(fromFd);
    } catch {
      return;
    }
    for (const mapFd of [this.#routes, this.#targets]) {
      const attr = Buffer.alloc(32);
      attr.writeUInt32LE(mapFd, 0);
      attr.writeBigUInt64LE(BigInt(this.#c.koffi.address(key) as bigint), 8);
      try {
        bpf(this.#c, BPF_MAP_DELETE_ELEM, attr, 'removing a socket from a sockhash');
      } catch {
        // Not there (the insert never happened): nothing to undo.
      }
    }
  }

  #update(mapFd: number, key: Buffer, fd: number): void {
    const value = Buffer.alloc(4);
    value.writeUInt32LE(fd, 0);
    const attr = Buffer.alloc(32);
    attr.writeUInt32LE(mapFd, 0);
    attr.writeBigUInt64LE(BigInt(this.#c.koffi.address(key) as bigint), 8);
    attr.writeBigUInt64LE(BigInt(this.#c.koffi.address(value) as bigint), 16);
    attr.writeBigUInt64LE(BPF_ANY, 24);
    bpf(this.#c, BPF_MAP_UPDATE_ELEM, attr, 'adding a socket to a sockhash');
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const fd of this.#fds) this.#c.close(fd);
  }
}
