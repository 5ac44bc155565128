// Who is on the other end of an accepted Unix-socket connection, as the kernel says.
//
// Trust assumption: SO_PEERCRED is the only caller identity the Workload API has. The kernel
// records pid/uid/gid when the peer called connect(); the peer cannot forge them (it could pass
// the connected socket on to another process, which is why the spec calls the Workload API
// "attested per connecting process", exactly as SPIRE does). Node's `net` does not expose the
// credentials, so libc getsockopt(2) is called through koffi on the socket's file descriptor.
import { createRequire } from 'node:module';
import { endianness } from 'node:os';
import type { Socket } from 'node:net';
import type Koffi from 'koffi';

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const SO_PEERPIDFD = 77;
const ENOPROTOOPT = 92;
const UCRED_BYTES = 12; // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
/** pidfd_open(2): the same number on every Linux architecture (the unified syscall table). */
const SYS_PIDFD_OPEN = 434;
const POLLIN = 0x1;

export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

interface Libc {
  getsockopt(fd: number, level: number, name: number, val: Buffer, len: number[]): number;
  close(fd: number): number;
  pidfdOpen(pid: number): number;
  /** poll(2) on one descriptor with timeout 0: the revents bits. */
  pollNow(fd: number): number;
  errno(): number;
}

let libc: Libc | undefined;
/** Set once the kernel said it has no SO_PEERPIDFD, so we stop asking on every connection. */
let pidfdUnsupported = false;
let pidfdOpenUnsupported = false;
const ENOSYS = 38;
const EINTR = 4;

let library: { koffi: typeof Koffi; lib: ReturnType<typeof Koffi.load> } | undefined;

/** koffi and the C library node links against, loaded once (also for the proxy's kernel calls). */
export function libcLibrary(): { koffi: typeof Koffi; lib: ReturnType<typeof Koffi.load> } {
  if (library) return library;
  const koffi = createRequire(import.meta.url)('koffi') as typeof Koffi;
  let lib: ReturnType<typeof koffi.load>;
  try {
    // dlopen(NULL): the symbols node itself links against, whichever libc that is (glibc, musl).
    lib = koffi.load(null);
  } catch {
    lib = koffi.load('libc.so.6');
  }
  library = { koffi, lib };
  return library;
}

/** Loads koffi and binds libc once, on first use (the agent may never serve a connection). */
function loadLibc(): Libc {
  if (libc) return libc;
  if (process.platform !== 'linux') {
    throw new Error(`peer credentials are implemented for Linux only (not ${process.platform})`);
  }
  const { koffi, lib } = libcLibrary();
  const getsockopt = lib.func(
    'int getsockopt(int fd, int level, int name, void *optval, _Inout_ uint32_t *optlen)',
  );
  const close = lib.func('int close(int fd)');
  const syscall = lib.func('long syscall(long number, ...)');
  const poll = lib.func('int poll(_Inout_ void *fds, unsigned long nfds, int timeout)');
  const pollfd = Buffer.alloc(8); // struct pollfd { int fd; short events; short revents; }
  const le = endianness() === 'LE';
  libc = {
    getsockopt: (fd, level, name, val, len) => getsockopt(fd, level, name, val, len) as number,
    close: (fd) => close(fd) as number,
    pidfdOpen: (pid) => Number(syscall(SYS_PIDFD_OPEN, 'int', pid, 'unsigned int', 0)),
    pollNow: (fd) => {
      if (le) {
        pollfd.writeInt32LE(fd, 0);
        pollfd.writeInt16LE(POLLIN, 4);
        pollfd.writeInt16LE(0, 6);
      } else {
        pollfd.writeInt32BE(fd, 0);
        pollfd.writeInt16BE(POLLIN, 4);
        pollfd.writeInt16BE(0, 6);
      }
      // A signal (SIGPROF under --cpu-prof, say) may interrupt even a zero-timeout poll.
      for (let tries = 0; (poll(pollfd, 1, 0) as number) < 0; tries++) {
        if (koffi.errno() !== EINTR || tries >= 100) return -1;
      }
      return le ? pollfd.readInt16LE(6) : pollfd.readInt16BE(6);
    },
    errno: () => koffi.errno(),
  };
  return libc;
}

/**
 * The file descriptor under a net.Socket (Unix domain). Undocumented Node internals, hence the
 * checks: a missing or non-numeric fd means we cannot identify the caller, never "anyone".
 */
export function socketFd(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) {
    throw new Error('the socket has no usable file descriptor');
  }
  return fd;
}

/** SO_PEERCRED of a connected Unix socket. Throws when the kernel does not answer. */
export function peerCredentials(fd: number): PeerCredentials {
  const c = loadLibc();
  const buf = Buffer.alloc(UCRED_BYTES);
  const len = [UCRED_BYTES];
  if (c.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, buf, len) !== 0) {
    throw new Error(`getsockopt(SO_PEERCRED) failed: errno ${c.errno()}`);
  }
  if (len[0] !== UCRED_BYTES) throw new Error(`getsockopt(SO_PEERCRED) returned ${len[0]} bytes`);
  const le = endianness() === 'LE';
  const pid = le ? buf.readInt32LE(0) : buf.readInt32BE(0);
  const uid = le ? buf.readUInt32LE(4) : buf.readUInt32BE(4);
  const gid = le ? buf.readUInt32LE(8) : buf.readUInt32BE(8);
  return { pid, uid, gid };
}

/**
 * getsockopt(2) of `size` bytes on a socket fd (for options the kernel fills in, as the proxy's
 * SO_ORIGINAL_DST): the bytes it wrote, or the errno when it refused.
 */
export function socketOption(
  fd: number,
  level: number,
  name: number,
  size: number,
): { ok: true; value: Buffer } | { ok: false; errno: number } {
  const c = loadLibc();
  const buf = Buffer.alloc(size);
  const len = [size];
  if (c.getsockopt(fd, level, name, buf, len) !== 0) return { ok: false, errno: c.errno() };
  return { ok: true, value: buf.subarray(0, len[0]) };
}

/**
 * A pidfd for the peer process (SO_PEERPIDFD, Linux ≥ 6.5): it names the exact process that
 * connected, so PID reuse cannot fool it. `undefined` when the kernel lacks the option
 * (ENOPROTOOPT) or the peer has already gone (ESRCH and friends): callers then pin by start
 * time only. The caller owns the returned fd and must closeFd() it.
 */
export function peerPidfd(fd: number): number | undefined {
  if (pidfdUnsupported) return undefined;
  const c = loadLibc();
  const buf = Buffer.alloc(4);
  const len = [4];
  if (c.getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, buf, len) !== 0) {
    if (c.errno() === ENOPROTOOPT) pidfdUnsupported = true;
    return undefined;
  }
  const pidfd = endianness() === 'LE' ? buf.readInt32LE(0) : buf.readInt32BE(0);
  return pidfd >= 0 ? pidfd : undefined;
}

/**
 * pidfd_open(2) (Linux ≥ 5.3): a pidfd for `pid` as it is now, for peers the kernel did not
 * name by pidfd (loopback TCP). The caller checks afterwards that the pid is still the process
 * it looked at (pinProcess reads its start time while the pidfd holds the pid). `undefined` when
 * the kernel lacks the call or the process has gone.
 */
export function pidfdOpen(pid: number): number | undefined {
  if (pidfdOpenUnsupported) return undefined;
  const fd = loadLibc().pidfdOpen(pid);
  if (fd < 0) {
    if (loadLibc().errno() === ENOSYS) pidfdOpenUnsupported = true;
    return undefined;
  }
  return fd;
}

/**
 * Whether the process of a pidfd has exited: a pidfd polls readable (POLLIN) once it has. One
 * syscall (~0.3 µs), the per-call liveness check; `true` also when poll itself fails (a closed
 * or invalid descriptor is no proof of life).
 */
export function pidfdExited(pidfd: number): boolean {
  const revents = loadLibc().pollNow(pidfd);
  return revents !== 0;
}

/** Closes a descriptor we own (a pidfd); errors are ignored: there is nothing left to do. */
export function closeFd(fd: number): void {
  loadLibc().close(fd);
}
