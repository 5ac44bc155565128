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

export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

interface Libc {
  getsockopt(fd: number, level: number, name: number, val: Buffer, len: number[]): number;
  close(fd: number): number;
  errno(): number;
}

let libc: Libc | undefined;
/** Set once the kernel said it has no SO_PEERPIDFD, so we stop asking on every connection. */
let pidfdUnsupported = false;

/** Loads koffi and binds libc once, on first use (the agent may never serve a connection). */
function loadLibc(): Libc {
  if (libc) return libc;
  if (process.platform !== 'linux') {
    throw new Error(`peer credentials are implemented for Linux only (not ${process.platform})`);
  }
  const koffi = createRequire(import.meta.url)('koffi') as typeof Koffi;
  let lib: ReturnType<typeof koffi.load>;
  try {
    // dlopen(NULL): the symbols node itself links against, whichever libc that is (glibc, musl).
    lib = koffi.load(null);
  } catch {
    lib = koffi.load('libc.so.6');
  }
  const getsockopt = lib.func(
    'int getsockopt(int fd, int level, int name, void *optval, _Inout_ uint32_t *optlen)',
  );
  const close = lib.func('int close(int fd)');
  libc = {
    getsockopt: (fd, level, name, val, len) => getsockopt(fd, level, name, val, len) as number,
    close: (fd) => close(fd) as number,
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

/** Closes a descriptor we own (a pidfd); errors are ignored: there is nothing left to do. */
export function closeFd(fd: number): void {
  loadLibc().close(fd);
}
