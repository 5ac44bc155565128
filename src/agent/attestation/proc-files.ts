// The procfs files a cached attestation is re-validated from (attestation-cache.ts), opened once
// per pinned process and read again with pread(2): no path lookup, open or close per check.
//
// Trust assumption: an open /proc/<pid>/* file names the process it was opened on (the kernel
// ties it to that process, not to the number): once the process exits, reads fail (ESRCH), even
// if its pid is reused. So the only window is the opening, and it is closed there: the files are
// opened, then the process is shown to still be the pinned one (its pidfd still live; or, without
// a pidfd, the start time read through the stat file opened last equals the pin's). Whatever was
// opened before that moment was opened on the pinned process.
import { closeSync, openSync, readSync } from 'node:fs';
import { MappedFiles } from './mapped-files.ts';
import { pidfdExited } from './peer-credentials.ts';
import { parseStartTime, type ProcessPin } from './process-pin.ts';

export interface ProcFiles {
  readonly status: number;
  readonly cgroup: number;
  /** Without a pidfd only: the start time is read through it on every check. */
  readonly stat: number | undefined;
  /**
   * /proc/<pid>/maps, read only when the executable mappings' size moved (mapped-files.ts);
   * undefined when we may not read it (then the process reports no libraries either).
   */
  readonly maps: number | undefined;
  /** What maps said when last read. */
  readonly mapped: MappedFiles;
}

const buf = Buffer.allocUnsafe(16 * 1024);

/**
 * Opens the files of the pinned process. Throws when it has gone or is not the pinned one (then
 * nothing stays open).
 */
export function openProcFiles(pin: ProcessPin, procRoot = '/proc'): ProcFiles {
  const dir = `${procRoot}/${pin.pid}`;
  const opened: number[] = [];
  try {
    const status = openSync(`${dir}/status`, 'r');
    opened.push(status);
    const cgroup = openSync(`${dir}/cgroup`, 'r');
    opened.push(cgroup);
    const maps = openIfAllowed(`${dir}/maps`);
    if (maps !== undefined) opened.push(maps);
    let stat: number | undefined;
    if (pin.pidfd === undefined) {
      stat = openSync(`${dir}/stat`, 'r');
      opened.push(stat);
    }
    const files = { status, cgroup, stat, maps, mapped: new MappedFiles() };
    // Opened last, checked now: every file above was opened on the pinned process.
    if (pin.pidfd !== undefined ? pidfdExited(pin.pidfd) : startTimeOf(files) !== pin.startTime) {
      throw new Error('the pid now belongs to another process');
    }
    return files;
  } catch (e) {
    for (const fd of opened) closeSync(fd);
    throw e;
  }
}

export function closeProcFiles(f: ProcFiles): void {
  closeSync(f.status);
  closeSync(f.cgroup);
  if (f.stat !== undefined) closeSync(f.stat);
  if (f.maps !== undefined) closeSync(f.maps);
}

/**
 * maps needs ptrace read access to the process (an agent not running as root, a process of
 * another uid): refused means "no libraries to report", as workload-attributes.ts has it.
 * Any other failure (the process has gone) is thrown.
 */
export function openIfAllowed(path: string): number | undefined {
  try {
    return openSync(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EACCES') return undefined;
    throw e;
  }
}

/** The file's content now, as latin1 (procfs regenerates it on a read from offset 0). */
export function preadProc(fd: number): string {
  const n = readSync(fd, buf, 0, buf.length, 0);
  if (n < buf.length) return buf.toString('latin1', 0, n);
  // Larger than the buffer (a huge cgroup file): read it whole.
  return preadWhole(fd, 4 * 1024 * 1024, 'procfs file');
}

/**
 * A held procfs file read whole from offset 0: a seq_file returns a page or so per read, so read
 * on until the end. Throws past `limit` bytes (what is read must be complete).
 */
export function preadWhole(fd: number, limit: number, what: string): string {
  const chunks: Buffer[] = [];
  let at = 0;
  for (;;) {
    const chunk = Buffer.allocUnsafe(64 * 1024);
    const k = readSync(fd, chunk, 0, chunk.length, at);
    if (k === 0) break;
    chunks.push(chunk.subarray(0, k));
    at += k;
    if (at > limit) throw new Error(`${what} larger than ${limit / (1024 * 1024)} MiB`);
  }
  return Buffer.concat(chunks).toString('latin1');
}

/** The start time through the held stat file; '' with a pidfd (the pidfd proves liveness). */
export function startTimeOf(f: ProcFiles): string {
  return f.stat === undefined ? '' : parseStartTime(preadProc(f.stat));
}
