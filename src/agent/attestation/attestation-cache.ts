// Workload attestation results remembered per connection, so that a client making many unary
// calls (FetchJWTSVID) on one connection is not attested from scratch on every call.
//
// Why this is safe. The selectors of a process are a function of
//   (a) kernel facts about the process: its identity (pid + start time, pinned at accept, see
//       process-pin.ts), its credentials (effective and other uids/gids and supplementary groups),
//       the executable it runs (the file /proc/<pid>/exe opens, and the path it reads as), its
//       cgroup membership (container and pod identity for the docker and k8s attestors), and the
//       files it maps executable (the libraries its attributes report; mapped-files.ts);
//   (b) facts outside the process: account names in /etc/passwd and /etc/group, container labels,
//       pod metadata.
// A cached result is used only while every fact in (a) reads the same as when it was attested:
// it is re-read on every call ("fingerprint") and compared. exec() of another binary changes the
// executable (another inode, or the same inode under another path; a binary rewritten in place
// changes size/mtime/ctime, and ctime cannot be set back by a user); setuid/setgid/setgroups and
// a setuid binary change the status lines; a move to another cgroup changes the cgroup file; a
// library mapped or unmapped changes the set of mapped files (maps is read again only when the
// status file's VmExe/VmLib lines moved, so this costs nothing while they stay put); pid
// reuse changes the start time (and kills the pidfd). Any difference, or any read failing, drops
// the entry and the call attests afresh. The facts in (b) may change without the process doing
// anything; they are trusted for at most `ttlMs` (default 1 s, the same bound the unix attestor
// already applies to re-reading passwd/group), after which the call attests afresh.
// The files read on every re-validation (status, cgroup, maps, and stat without a pidfd) are opened
// once per connection and read again with pread (proc-files.ts): ~39 µs per check → ~25 µs.
// Re-validation interval. Reading the fingerprint costs four procfs reads (~20-30 µs), most of
// the agent's own work on a FetchJWTSVID cache hit. So it is read at most every `revalidateMs`
// per connection (the agent uses 100 ms), while the pin — the check that the pid is still the
// process that connected, which is what stops another process from inheriting the identity —
// stays on every call and is cheap (one poll(2) on the pidfd, or one stat read). The trade-off,
// in docs/threat-model.md: a process that exec()s, changes its credentials or cgroup keeps its
// previous selectors on that connection for at most `revalidateMs`.
// The fingerprint is taken before attestation and again after it; a result is cached only when
// both agree, so a process that changes while being attested is never cached under its new
// fingerprint. The caller re-checks the pin (verifyPin) after using a cached result, exactly as
// after a fresh attestation. What remains is the window between the last check and the reply, which exists
// without the cache too (the pin is checked after attestation, then the reply is built).
import { closeSync, readlinkSync, statSync } from 'node:fs';
import type { Selector } from '../../core/selector.ts';
import { executableSizes, mappedFilesSignature, preadMaps } from './mapped-files.ts';
import {
  closeProcFiles,
  openIfAllowed,
  openProcFiles,
  preadProc,
  startTimeOf,
  type ProcFiles,
} from './proc-files.ts';
import { parseStartTime, readProc, type ProcessPin } from './process-pin.ts';

/**
 * Kernel facts of a process that its selectors depend on, as one comparable string. Runs on
 * every FetchJWTSVID, hence the lean reads (readProc) and no more of them than needed.
 */
export function processFingerprint(pin: ProcessPin, procRoot = '/proc'): string {
  const dir = `${procRoot}/${pin.pid}`;
  // With a pidfd, the pin check that follows every use (verifyPin: the pidfd still names a live
  // `pid`) proves that no read below saw another process: a pid is not reused while its process
  // lives. Without one, the start time is read first and checked again by verifyPin after.
  const startTime = pin.pidfd === undefined ? parseStartTime(readProc(`${dir}/stat`)) : '';
  return fingerprintOf(
    pin,
    dir,
    startTime,
    () => readProc(`${dir}/status`),
    () => readProc(`${dir}/cgroup`),
    () => mappedFilesSignature(readMaps(`${dir}/maps`)),
  );
}

/** maps by path, whole ('' when we may not read it, as openProcFiles has it). */
function readMaps(path: string): string {
  const fd = openIfAllowed(path);
  if (fd === undefined) return '';
  try {
    return preadMaps(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * processFingerprint through the process's held procfs files (proc-files.ts): the same string,
 * without opening status, cgroup (and stat) again. Throws once the process has gone.
 */
export function heldFingerprint(pin: ProcessPin, files: ProcFiles, procRoot = '/proc'): string {
  return fingerprintOf(
    pin,
    `${procRoot}/${pin.pid}`,
    startTimeOf(files),
    () => preadProc(files.status),
    () => preadProc(files.cgroup),
    (trigger) =>
      files.maps === undefined ? '' : files.mapped.signature(trigger, () => preadMaps(files.maps!)),
  );
}

/**
 * The fingerprint from its parts; `startTime` '' with a pidfd (which proves liveness).
 * `libraries` gets the status file's executable-mapping sizes, its trigger (mapped-files.ts);
 * it is read after status, so what it returns is at least as new as that trigger.
 */
function fingerprintOf(
  pin: ProcessPin,
  dir: string,
  startTime: string,
  status: () => string,
  cgroup: () => string,
  libraries: (trigger: string) => string,
): string {
  if (startTime !== (pin.pidfd === undefined ? pin.startTime : '')) {
    throw new Error('the pid now belongs to another process');
  }
  const exe = statSync(`${dir}/exe`, { bigint: true });
  const exePath = readlinkSync(`${dir}/exe`);
  const s = status();
  return [
    startTime,
    `${exe.dev}:${exe.ino}:${exe.size}:${exe.mtimeNs}:${exe.ctimeNs}`,
    exePath,
    credentialLines(s),
    cgroup(),
    libraries(executableSizes(s)),
  ].join('\0');
}

/** The Uid:, Gid: and Groups: lines of /proc/<pid>/status (real, effective, saved, fs ids). */
export function credentialLines(status: string): string {
  const out: string[] = [];
  for (const name of ['\nUid:', '\nGid:', '\nGroups:']) {
    const at = status.indexOf(name);
    if (at < 0) throw new Error(`malformed /proc status: no ${name.slice(1)} line`);
    const end = status.indexOf('\n', at + 1);
    out.push(status.slice(at + 1, end < 0 ? undefined : end));
  }
  return out.join('\n');
}

interface Cached {
  readonly fingerprint: string;
  readonly selectors: Selector[];
  readonly expiresAt: number;
  /** When the fingerprint was last read and found unchanged (monotonic ms). */
  checkedAt: number;
}

export interface AttestationCacheOptions {
  /** How long a result may be reused (facts outside the process). 0 disables the cache. */
  readonly ttlMs: number;
  /**
   * The fingerprint is read again at most this often per connection (0: on every call); the pin
   * is checked on every call regardless. See "Re-validation interval" above. Default 0.
   */
  readonly revalidateMs?: number;
  /** Monotonic milliseconds. */
  readonly now?: () => number;
  readonly procRoot?: string;
}

/**
 * One entry per pinned process (hence per connection: each connection has its own pin), held
 * weakly: when the connection goes, so does its entry.
 */
export class AttestationCache {
  readonly #ttlMs: number;
  readonly #revalidateMs: number;
  readonly #now: () => number;
  readonly #procRoot: string;
  readonly #entries = new WeakMap<ProcessPin, Cached>();
  /** Per pinned process, its procfs files held open for re-validation (closed by release()). */
  readonly #files = new WeakMap<ProcessPin, ProcFiles>();
  /** A pin dropped without release() (a caller that forgot) still gets its files closed. */
  readonly #orphans = new FinalizationRegistry<ProcFiles>((f) => closeProcFiles(f));

  constructor(o: AttestationCacheOptions) {
    this.#ttlMs = o.ttlMs;
    this.#revalidateMs = o.revalidateMs ?? 0;
    this.#now = o.now ?? (() => performance.now());
    this.#procRoot = o.procRoot ?? '/proc';
  }

  get enabled(): boolean {
    return this.#ttlMs > 0;
  }

  /** The cached selectors if still valid for the process as it is now; else undefined. */
  get(pin: ProcessPin): Selector[] | undefined {
    const c = this.#entries.get(pin);
    if (!c) return undefined;
    const now = this.#now();
    if (now >= c.expiresAt) {
      this.#entries.delete(pin);
      return undefined;
    }
    if (now - c.checkedAt < this.#revalidateMs) return c.selectors;
    if (this.fingerprint(pin) !== c.fingerprint) {
      this.#entries.delete(pin);
      return undefined;
    }
    c.checkedAt = now;
    return c.selectors;
  }

  /**
   * The fingerprint now, or undefined when it cannot be read (a process we may not inspect, or
   * one that has gone): such a process is simply never cached. Read with the cache off too: the
   * callers of open streams are re-checked with it (running-callers.ts).
   */
  fingerprint(pin: ProcessPin): string | undefined {
    try {
      let files = this.#files.get(pin);
      if (files === undefined) {
        files = openProcFiles(pin, this.#procRoot);
        this.#files.set(pin, files);
        this.#orphans.register(pin, files, pin);
      }
      return heldFingerprint(pin, files, this.#procRoot);
    } catch {
      return undefined;
    }
  }

  /** Forgets the connection's process and closes its files: its connection has closed. */
  release(pin: ProcessPin): void {
    this.#entries.delete(pin);
    const files = this.#files.get(pin);
    if (files === undefined) return;
    this.#files.delete(pin);
    this.#orphans.unregister(pin);
    closeProcFiles(files);
  }

  /** Remembers `selectors` when the process read the same before (`before`) and after attesting. */
  put(pin: ProcessPin, before: string | undefined, selectors: Selector[]): void {
    if (!this.enabled || before === undefined) return;
    const after = this.fingerprint(pin);
    if (after !== before) {
      this.#entries.delete(pin);
      return;
    }
    const now = this.#now();
    this.#entries.set(pin, {
      fingerprint: after,
      // Handed to every later call on the connection: nobody may change it in between.
      selectors: Object.freeze(selectors) as Selector[],
      expiresAt: now + this.#ttlMs,
      checkedAt: now,
    });
  }
}
