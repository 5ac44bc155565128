// bpf(2) through koffi, for the proxy's kernel relay and attestation's socket-holder iterator:
// creating maps, loading and attaching programs, iterator links, reading and writing map elements
// (the attribute layouts of union bpf_attr, include/uapi/linux/bpf.h). Errors name the command
// and the errno.
import type { Libc } from './libc.ts';

const SYS_BPF = 321; // x86_64; see syscallNumber()
const BPF_MAP_CREATE = 0;
const BPF_MAP_LOOKUP_ELEM = 1;
const BPF_MAP_UPDATE_ELEM = 2;
const BPF_MAP_DELETE_ELEM = 3;
const BPF_PROG_LOAD = 5;
const BPF_PROG_ATTACH = 8;
const BPF_LINK_CREATE = 28;
const BPF_ITER_CREATE = 33;
export const BPF_MAP_TYPE_HASH = 1;
export const BPF_MAP_TYPE_ARRAY = 2;
const BPF_MAP_TYPE_SOCKHASH = 18;
export const BPF_PROG_TYPE_SK_SKB = 14;
export const BPF_PROG_TYPE_SK_MSG = 16;
const BPF_PROG_TYPE_TRACING = 26;
const BPF_TRACE_ITER = 28;
export const BPF_SK_MSG_VERDICT = 7;
export const BPF_SK_SKB_VERDICT = 38;
export const BPF_ANY = 0n;
export const BPF_NOEXIST = 1n;

/**
 * bpf(2)'s number: x86_64 and arm64 are the architectures the agent's koffi calls are checked on.
 * Elsewhere the first call fails with this reason: the agent logs `kernel relay off` and relays
 * in user space (docs/injection.md), and walks /proc for loopback callers.
 */
function syscallNumber(): number {
  if (process.arch === 'x64') return SYS_BPF;
  if (process.arch === 'arm64') return 280;
  throw new Error(`bpf(2) is called on x64 and arm64 only, not ${process.arch}`);
}

const EAGAIN = 11;
const LOAD_ATTEMPTS = 5;

const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM (needs root: CAP_BPF with CAP_NET_ADMIN or CAP_PERFMON)',
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

function call(c: Libc, cmd: number, attr: Buffer): number {
  return Number(
    c.syscall(syscallNumber(), 'int', cmd, 'void *', attr, 'unsigned int', attr.length),
  );
}

function bpf(c: Libc, cmd: number, attr: Buffer, what: string, log?: Buffer): number {
  const r = call(c, cmd, attr);
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

/** Values are written as a socket fd (u64) and read back as the socket's cookie. */
export function createSockhash(c: Libc, keyBytes: number, capacity: number, name: string): number {
  return createMap(c, BPF_MAP_TYPE_SOCKHASH, keyBytes, 8, capacity, name);
}

export function createMap(
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

/**
 * Loads a program; its fd. `expected`: the attach type it is loaded for, and the kernel BTF id of
 * what it attaches to (tracing programs).
 */
function loadProgram(
  c: Libc,
  type: number,
  code: Buffer,
  name: string,
  expected?: { attachType: number; btfId: number },
): number {
  const license = Buffer.from('GPL\0');
  const log = Buffer.alloc(16_384);
  const prog = Buffer.alloc(144);
  prog.writeUInt32LE(type, 0);
  prog.writeUInt32LE(code.length / 8, 4);
  prog.writeBigUInt64LE(BigInt(c.koffi.address(code) as bigint), 8);
  prog.writeBigUInt64LE(BigInt(c.koffi.address(license) as bigint), 16);
  prog.writeUInt32LE(1, 24); // log level: the verifier says why, if it refuses
  prog.writeUInt32LE(log.length, 28);
  prog.writeBigUInt64LE(BigInt(c.koffi.address(log) as bigint), 32);
  Buffer.from(name).copy(prog, 48); // prog_name
  if (expected) {
    prog.writeUInt32LE(expected.attachType, 68); // expected_attach_type
    prog.writeUInt32LE(expected.btfId, 108); // attach_btf_id (in vmlinux: attach_btf_obj_fd 0)
  }
  // The verifier gives up with EAGAIN when a signal arrives meanwhile (a profiler's SIGPROF):
  // try again, as libbpf does.
  for (let attempt = 1; ; attempt++) {
    try {
      return bpf(c, BPF_PROG_LOAD, prog, `loading the ${name} program`, log);
    } catch (e) {
      if (!(e instanceof BpfError) || e.errno !== EAGAIN || attempt >= LOAD_ATTEMPTS) throw e;
    }
  }
}

/** Loads `code` and attaches it to `mapFd`; the program's fd. */
export function attachProgram(
  c: Libc,
  type: number,
  attachType: number,
  code: Buffer,
  mapFd: number,
  name: string,
): number {
  const progFd = loadProgram(c, type, code, name);
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

/**
 * A BPF iterator (bpf_iter): `code` loaded as a tracing program for the kernel's iterator
 * function `btfId` (e.g. bpf_iter_task_file) and linked; the link's fd. Each `openIterator` of
 * the link runs the program over the kernel's objects anew.
 */
export function createIteratorLink(c: Libc, code: Buffer, btfId: number, name: string): number {
  const progFd = loadProgram(c, BPF_PROG_TYPE_TRACING, code, name, {
    attachType: BPF_TRACE_ITER,
    btfId,
  });
  try {
    const link = Buffer.alloc(32);
    link.writeUInt32LE(progFd, 0);
    link.writeUInt32LE(BPF_TRACE_ITER, 8);
    return bpf(c, BPF_LINK_CREATE, link, `linking the ${name} iterator`);
  } finally {
    c.close(progFd); // the link holds the program
  }
}

/** A readable fd whose reads run the linked iterator program; what it writes is what is read. */
export function openIterator(c: Libc, linkFd: number): number {
  const attr = Buffer.alloc(8);
  attr.writeUInt32LE(linkFd, 0);
  return bpf(c, BPF_ITER_CREATE, attr, 'opening an iterator');
}

/** The value under `key` in `mapFd` (a sockhash's: the socket's cookie), or undefined. */
export function mapLookup(
  c: Libc,
  mapFd: number,
  key: Buffer,
  valueBytes: number,
): Buffer | undefined {
  const value = Buffer.alloc(valueBytes);
  const attr = Buffer.alloc(32);
  attr.writeUInt32LE(mapFd, 0);
  attr.writeBigUInt64LE(BigInt(c.koffi.address(key) as bigint), 8);
  attr.writeBigUInt64LE(BigInt(c.koffi.address(value) as bigint), 16);
  // Not there is the usual answer for some lookups: no error built for it (a stack trace each).
  return call(c, BPF_MAP_LOOKUP_ELEM, attr) < 0 ? undefined : value;
}

/** Sets `key` to `value` in `mapFd` (a sockhash's value: a socket fd, u64). Throws BpfError. */
export function mapUpdate(c: Libc, mapFd: number, key: Buffer, value: Buffer, flags: bigint): void {
  const attr = Buffer.alloc(32);
  attr.writeUInt32LE(mapFd, 0);
  attr.writeBigUInt64LE(BigInt(c.koffi.address(key) as bigint), 8);
  attr.writeBigUInt64LE(BigInt(c.koffi.address(value) as bigint), 16);
  attr.writeBigUInt64LE(flags, 24);
  bpf(c, BPF_MAP_UPDATE_ELEM, attr, 'updating a map');
}

/** Removes `key` from `mapFd`; not there is not an error. */
export function mapDelete(c: Libc, mapFd: number, key: Buffer): void {
  const attr = Buffer.alloc(32);
  attr.writeUInt32LE(mapFd, 0);
  attr.writeBigUInt64LE(BigInt(c.koffi.address(key) as bigint), 8);
  call(c, BPF_MAP_DELETE_ELEM, attr); // not there (never inserted, or the socket closed): fine
}
