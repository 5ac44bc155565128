// Socket inode → the processes holding it, by walking /proc/<pid>/fd (readlink → "socket:[N]").
//
// Trust assumption: only the kernel writes these links. /proc lists thread-group leaders only, so
// a multi-threaded process is one entry (its threads share one descriptor table). Proving that a
// socket has exactly ONE holder needs every process looked at: a descriptor can be inherited by a
// fork or passed over SCM_RIGHTS to any process, of any uid. So the walk is complete, and it is
// bounded instead of sampled: past `maxProcesses` processes or `maxDescriptors` descriptors, or
// when some process's descriptor table cannot be read (an agent without the privilege to read
// other users' /proc/<pid>/fd), the answer is "cannot tell", which the caller refuses — with one
// exception, root processes more privileged than the agent (morePrivilegedThanUs).
// The walk yields to the event loop between slices so other callers are not stalled by it.
//
// Cost: a readlink per descriptor of the machine (the kernel's part, ~3.5 µs each here: a path
// lookup, a ptrace access check, the link text). What is ours is kept small: each /proc/<pid>/fd
// directory is opened once, listed with getdents64 into a reused buffer (no array of names), and
// each entry read with readlinkat(dirfd, name) through koffi into a reused buffer, compared as
// bytes — no full path per descriptor, no exception per failure, no stat per process (the old
// "creator's uid first" order found the usual holder sooner, but the walk goes on to the end to
// prove uniqueness anyway). Measured on a 2-core machine with ~130 processes and ~1,000
// descriptors: a whole walk 8.3 ms of CPU with Node's readdirSync/readlinkSync, 4.9 ms this way
// (a C program doing the same walk: 3.9 ms).
// Not skipped: the agent's own pid. It holds no workload's client socket in production, but a
// process may be its own caller (in-process tests; an agent whose own traffic a redirect sends
// back to it), and then skipping it would turn "the agent" into "nobody" or into a lone other
// holder: the proof stays complete.
import { closeSync, constants, openSync, readFileSync, readdirSync } from 'node:fs';
import { endianness } from 'node:os';
import type { KernelSocketHolders } from './kernel-socket-holders.ts';
import { libcLibrary } from './peer-credentials.ts';

export interface SocketOwnerOptions {
  readonly procRoot?: string;
  /** Most processes walked; more: refused as "cannot tell". Default 32,768. */
  readonly maxProcesses?: number;
  /** Most descriptors looked at in all; more: refused. Default 1,048,576. */
  readonly maxDescriptors?: number;
  /** Processes walked between yields to the event loop. Default 64. */
  readonly sliceSize?: number;
  /**
   * The kernel's own pass over every open file (kernel-socket-holders.ts), used instead of the
   * /proc walk when given and `procRoot` is the real /proc: the same complete answer, ~50 times
   * cheaper. The bounds above are the walk's.
   */
  readonly kernel?: KernelSocketHolders;
}

export interface SocketHolder {
  readonly pid: number;
  /** The descriptor number under /proc/<pid>/fd that links to the socket. */
  readonly fd: number;
}

/** The walk could not complete: refuse (never guess from a partial walk). */
export class UndecidableOwnerError extends Error {}

/** What the walk needs of libc; getdents64 is absent from some C libraries (musl ≥ 1.2.4). */
interface Calls {
  readlinkat(dirfd: number, name: string, buf: Buffer, size: number): number;
  getdents64: ((dirfd: number, buf: Buffer, size: number) => number) | undefined;
  errno(): number;
}

let calls: Calls | undefined;
function bind(): Calls {
  if (calls) return calls;
  const { koffi, lib } = libcLibrary();
  const readlinkat = lib.func(
    'long readlinkat(int dirfd, const char *path, _Out_ void *buf, unsigned long size)',
  );
  let getdents64: Calls['getdents64'];
  try {
    const g = lib.func('long getdents64(int fd, _Out_ void *buf, unsigned long size)');
    getdents64 = (d, b, n) => Number(g(d, b, n));
  } catch {
    getdents64 = undefined; // then readdirSync lists the names
  }
  calls = {
    readlinkat: (d, name, b, n) => Number(readlinkat(d, name, b, n)),
    getdents64,
    errno: () => koffi.errno(),
  };
  return calls;
}

const ENOENT = 2;
const ESRCH = 3;
const le = endianness() === 'LE';
// Reused across calls: no await happens while one process's descriptors are read, so two walks
// interleaved at their yields never share them mid-use.
const dents = Buffer.allocUnsafe(32 * 1024);
/** Longer than any "socket:[N]": a longer link comes back cut, at this length, and not equal. */
const link = Buffer.allocUnsafe(64);

/**
 * Every process holding the socket, or a prefix of them ending at the second one found (then the
 * answer is already "several"). Throws UndecidableOwnerError when the walk cannot be complete.
 */
export async function socketHolders(
  inode: string,
  o: SocketOwnerOptions = {},
): Promise<SocketHolder[]> {
  const root = o.procRoot ?? '/proc';
  if (o.kernel !== undefined && root === '/proc') {
    try {
      return onePerProcess(await o.kernel.holders(inode));
    } catch {
      // A pass that failed (out of memory, say) proves nothing: the walk below answers instead.
    }
  }
  const maxProcesses = o.maxProcesses ?? 32_768;
  const maxDescriptors = o.maxDescriptors ?? 1_048_576;
  const slice = o.sliceSize ?? 64;
  const pids = readdirSync(root).filter((n) => /^[1-9]\d*$/.test(n));
  if (pids.length > maxProcesses) {
    throw new UndecidableOwnerError(`more than ${maxProcesses} processes to look at`);
  }
  const c = bind();
  const walk: Walk = {
    c,
    root,
    target: Buffer.from(`socket:[${inode}]`, 'latin1'),
    descriptors: 0,
    maxDescriptors,
  };
  const found: SocketHolder[] = [];
  let walked = 0;
  for (const pid of pids) {
    if (++walked % slice === 0) await new Promise((r) => setImmediate(r));
    const fd = holdingFd(walk, pid);
    if (fd === undefined) continue;
    found.push({ pid: Number(pid), fd });
    if (found.length > 1) return found;
  }
  return found;
}

/** The first descriptor of each process (dup()s in one process are one holder). */
function onePerProcess(all: readonly SocketHolder[]): SocketHolder[] {
  const seen = new Set<number>();
  return all.filter((h) => !seen.has(h.pid) && seen.add(h.pid));
}

interface Walk {
  readonly c: Calls;
  readonly root: string;
  /** The link text looked for, "socket:[inode]". */
  readonly target: Buffer;
  descriptors: number;
  readonly maxDescriptors: number;
}

/**
 * The first descriptor of `pid` that links to the socket (one is enough: dup()s in one process
 * are one holder), or undefined: none, the process has gone, or it is more privileged than us.
 */
function holdingFd(w: Walk, pid: string): number | undefined {
  const dir = `${w.root}/${pid}/fd`;
  let dirfd: number;
  try {
    dirfd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (e) {
    if (gone((e as { code?: unknown }).code)) return undefined; // exited: it holds nothing now
    if (morePrivilegedThanUs(w.root, pid)) return undefined;
    throw new UndecidableOwnerError(`cannot read the descriptors of pid ${pid}`, { cause: e });
  }
  try {
    const g = w.c.getdents64;
    if (g === undefined) {
      for (const name of readdirSync(dir)) {
        const r = look(w, pid, dirfd, name);
        if (r !== undefined) return r >= 0 ? r : undefined;
      }
      return undefined;
    }
    for (;;) {
      const n = g(dirfd, dents, dents.length);
      if (n === 0) return undefined;
      if (n < 0) {
        const errno = w.c.errno();
        if (errno === ENOENT || errno === ESRCH) return undefined;
        throw new UndecidableOwnerError(
          `cannot list the descriptors of pid ${pid} (errno ${errno})`,
        );
      }
      // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
      for (let at = 0; at < n;) {
        const reclen = le ? dents.readUInt16LE(at + 16) : dents.readUInt16BE(at + 16);
        if (reclen < 20 || at + reclen > n) {
          throw new UndecidableOwnerError(`a malformed descriptor list for pid ${pid}`);
        }
        const end = dents.indexOf(0, at + 19);
        if (end < 0 || end >= at + reclen) {
          throw new UndecidableOwnerError(`a malformed descriptor list for pid ${pid}`);
        }
        const name = dents.toString('latin1', at + 19, end);
        at += reclen;
        const r = look(w, pid, dirfd, name);
        if (r !== undefined) return r >= 0 ? r : undefined;
      }
    }
  } finally {
    closeSync(dirfd);
  }
}

/**
 * One directory entry: the descriptor number when it links to the socket; -1 when the rest of
 * this process is to be skipped (more privileged than us); undefined: go on.
 */
function look(w: Walk, pid: string, dirfd: number, name: string): number | undefined {
  if (!/^\d+$/.test(name)) return undefined; // "." and ".."
  if (++w.descriptors > w.maxDescriptors) {
    throw new UndecidableOwnerError(`more than ${w.maxDescriptors} descriptors to look at`);
  }
  const n = w.c.readlinkat(dirfd, name, link, link.length);
  if (n < 0) {
    const errno = w.c.errno();
    if (errno === ENOENT || errno === ESRCH) return undefined; // closed meanwhile
    if (morePrivilegedThanUs(w.root, pid)) return -1;
    throw new UndecidableOwnerError(`cannot read a descriptor of pid ${pid} (errno ${errno})`);
  }
  const t = w.target;
  return n === t.length && link.compare(t, 0, n, 0, n) === 0 ? Number(name) : undefined;
}

/**
 * A process the kernel will not let us inspect, that runs as root (all four uids 0) with
 * capabilities the agent lacks: it may read or trace any workload already (that is why we may
 * not read it), so its holding a workload's socket would give it nothing it does not have.
 * Skipping it is what keeps the walk decidable under supervisors and sandboxes (a pid 1 with
 * more capabilities than a root agent). Any other unreadable process makes the walk undecidable.
 */
function morePrivilegedThanUs(root: string, pid: string): boolean {
  try {
    const theirs = readFileSync(`${root}/${pid}/status`, 'latin1');
    if (!/^Uid:\s+0\s+0\s+0\s+0\s*$/m.test(theirs)) return false;
    const capsOf = (status: string) =>
      BigInt(`0x${/^CapPrm:\s+([0-9a-f]+)/m.exec(status)?.[1] ?? '0'}`);
    const ours = capsOf(readFileSync('/proc/self/status', 'latin1'));
    return (capsOf(theirs) & ~ours) !== 0n;
  } catch {
    return false;
  }
}

function gone(code: unknown): boolean {
  return code === 'ENOENT' || code === 'ESRCH';
}
