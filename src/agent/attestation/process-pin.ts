// Protection against PID reuse between "the kernel told us pid P connected" and "the workload
// attestors looked at pid P" (which takes time: /proc reads, container runtime queries, ...).
//
// Trust assumption: a process is the pair (pid, start time). The start time (field 22 of
// /proc/<pid>/stat, in clock ticks since boot) is set by the kernel and cannot be changed by the
// process, and a recycled pid gets a new start time. So we record it at connect time and, after
// attestation, require the same pid to still have the same start time; otherwise the selectors
// may describe another process and are thrown away (SPIRE's peertracker does the same).
// Where the kernel gives us a pidfd (SO_PEERPIDFD), it names the exact process that connected:
// while the pidfd reports the pid as alive, that pid cannot have been recycled, which also
// closes the small window between getsockopt and our first /proc read.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { UnavailableError } from '../../core/errors.ts';
import { closeFd, pidfdExited } from './peer-credentials.ts';

export interface ProcessPin {
  readonly pid: number;
  /** Field 22 of /proc/<pid>/stat, kept as text: it is compared, never computed with. */
  readonly startTime: string;
  /** Owned pidfd of the process, when the kernel provides one. */
  readonly pidfd: number | undefined;
}

const released = new WeakSet<ProcessPin>();

/** Field 22 (starttime) of a /proc/<pid>/stat line. comm (field 2) may hold spaces and ')'. */
export function parseStartTime(stat: string): string {
  const close = stat.lastIndexOf(')');
  if (close < 0) throw new Error('malformed /proc stat: no ")"');
  // After ") " come fields 3, 4, ...; field 22 is the 20th of them.
  const fields = stat
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const start = fields[22 - 3];
  if (start === undefined || !/^\d+$/.test(start)) throw new Error('malformed /proc stat');
  return start;
}

/** The "Pid:" line of a pidfd's fdinfo: the pid, or -1 once the process has exited. */
export function parsePidfdPid(fdinfo: string): number | undefined {
  const m = /^Pid:\s*(-?\d+)\s*$/m.exec(fdinfo);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

/**
 * Pins the process at connect time. Takes ownership of `pidfd` (closed here on failure, else by
 * releasePin). Throws when the process cannot be pinned: it is not visible to us (pid 0: another
 * pid namespace), already gone, or the pidfd does not name it.
 */
export function pinProcess(pid: number, pidfd: number | undefined): ProcessPin {
  try {
    if (!Number.isInteger(pid) || pid <= 0) {
      throw new Error(`the peer pid (${pid}) is not visible from this pid namespace`);
    }
    if (pidfd !== undefined) requirePidfdAlive(pid, readProc(fdinfoPath(pidfd)));
    const startTime = parseStartTime(readProc(`/proc/${pid}/stat`));
    // Still alive after the read: the stat we read was the connected process's, not a successor's.
    if (pidfd !== undefined) requirePidfdAlive(pid, readProc(fdinfoPath(pidfd)));
    return { pid, startTime, pidfd };
  } catch (e) {
    if (pidfd !== undefined) closeFd(pidfd);
    throw e;
  }
}

/**
 * Re-checks after attestation that the pinned process is still the one at `pid`. Throws
 * UnavailableError (SPIRE's code for this case: the client retries, and a retry attests afresh).
 */
export async function verifyPin(pin: ProcessPin): Promise<void> {
  checkPin(pin);
}

/**
 * verifyPin, synchronously. With a pidfd, one poll(2): a pidfd that has not polled readable names
 * a live process, and a live process's pid cannot have been recycled, so the start time need not
 * be read again (pinProcess checked once that the pidfd names `pid`). Without one, the start time
 * is read and compared. Synchronous on purpose: procfs files are generated in memory (a few µs),
 * while the async path costs ~0.5 ms of thread-pool round trips on every request.
 */
export function checkPin(pin: ProcessPin): void {
  try {
    if (released.has(pin)) throw new Error('the connection has closed');
    if (pin.pidfd !== undefined) {
      if (pidfdExited(pin.pidfd)) throw new Error('the process has exited');
      return;
    }
    const now = parseStartTime(readProc(`/proc/${pin.pid}/stat`));
    if (now !== pin.startTime) throw new Error('the pid now belongs to another process');
  } catch (e) {
    throw new UnavailableError('could not verify existence of the original caller', { cause: e });
  }
}

/** Closes the pidfd; idempotent. After this, verifyPin always fails. */
export function releasePin(pin: ProcessPin): void {
  if (released.has(pin)) return;
  released.add(pin);
  if (pin.pidfd !== undefined) closeFd(pin.pidfd);
}

const procBuf = Buffer.allocUnsafe(16 * 1024);

/**
 * A procfs file as latin1 text (bytes as they are: these files are ASCII, or compared, never
 * shown): one open, one read, one close, into a buffer kept for it. procfs fills a read from the
 * start of the file in one go when it fits. This runs several times on every Workload API call:
 * readFileSync's option handling and chunked reads cost more than the kernel here.
 */
export function readProc(path: string): string {
  const fd = openSync(path, 'r');
  let n: number;
  try {
    n = readSync(fd, procBuf, 0, procBuf.length, 0);
  } finally {
    closeSync(fd);
  }
  return n < procBuf.length ? procBuf.toString('latin1', 0, n) : readFileSync(path, 'latin1');
}

function fdinfoPath(fd: number): string {
  return `/proc/self/fdinfo/${fd}`;
}

function requirePidfdAlive(pid: number, fdinfo: string): void {
  const now = parsePidfdPid(fdinfo);
  if (now !== pid) {
    throw new Error(now === -1 ? 'the process has exited' : 'the pidfd does not name the peer');
  }
}
