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
// Cheap: processes of the socket's creator uid (the tcp table's uid column) are walked first, so
// the usual owner is found early, and a second holder ends the walk at once (ambiguous). The walk
// yields to the event loop between slices so other callers are not stalled by it.
import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';

export interface SocketOwnerOptions {
  readonly procRoot?: string;
  /** Most processes walked; more: refused as "cannot tell". Default 32,768. */
  readonly maxProcesses?: number;
  /** Most descriptors looked at in all; more: refused. Default 1,048,576. */
  readonly maxDescriptors?: number;
  /** Processes walked between yields to the event loop. Default 64. */
  readonly sliceSize?: number;
}

export interface SocketHolder {
  readonly pid: number;
  /** The descriptor number under /proc/<pid>/fd that links to the socket. */
  readonly fd: number;
}

/** The walk could not complete: refuse (never guess from a partial walk). */
export class UndecidableOwnerError extends Error {}

/**
 * Every process holding the socket, or a prefix of them ending at the second one found (then the
 * answer is already "several"). Throws UndecidableOwnerError when the walk cannot be complete.
 */
export async function socketHolders(
  inode: string,
  creatorUid: number,
  o: SocketOwnerOptions = {},
): Promise<SocketHolder[]> {
  const root = o.procRoot ?? '/proc';
  const maxProcesses = o.maxProcesses ?? 32_768;
  const maxDescriptors = o.maxDescriptors ?? 1_048_576;
  const slice = o.sliceSize ?? 64;
  const pids = readdirSync(root).filter((n) => /^[1-9]\d*$/.test(n));
  if (pids.length > maxProcesses) {
    throw new UndecidableOwnerError(`more than ${maxProcesses} processes to look at`);
  }
  // The creator's processes first: a cheap stat per process (the /proc/<pid> directory belongs to
  // its effective uid); the rest still has to be walked to prove there is no second holder.
  const first: string[] = [];
  const rest: string[] = [];
  for (const pid of pids) (ownerUid(`${root}/${pid}`) === creatorUid ? first : rest).push(pid);
  const target = `socket:[${inode}]`;
  const found: SocketHolder[] = [];
  let descriptors = 0;
  let walked = 0;
  for (const pid of [...first, ...rest]) {
    if (++walked % slice === 0) await new Promise((r) => setImmediate(r));
    let fds: string[];
    try {
      fds = readdirSync(`${root}/${pid}/fd`);
    } catch (e) {
      if (gone(e)) continue; // exited meanwhile: it holds nothing now
      if (morePrivilegedThanUs(root, pid)) continue;
      throw new UndecidableOwnerError(`cannot read the descriptors of pid ${pid}`, { cause: e });
    }
    descriptors += fds.length;
    if (descriptors > maxDescriptors) {
      throw new UndecidableOwnerError(`more than ${maxDescriptors} descriptors to look at`);
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`${root}/${pid}/fd/${fd}`);
      } catch (e) {
        if (gone(e)) continue; // closed meanwhile
        if (morePrivilegedThanUs(root, pid)) break;
        throw new UndecidableOwnerError(`cannot read a descriptor of pid ${pid}`, { cause: e });
      }
      if (link !== target) continue;
      found.push({ pid: Number(pid), fd: Number(fd) });
      if (found.length > 1) return found;
      break; // one descriptor per process is enough: dup()s in one process are one holder
    }
  }
  return found;
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

function ownerUid(dir: string): number {
  try {
    return statSync(dir).uid;
  } catch {
    return -1;
  }
}

function gone(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return code === 'ENOENT' || code === 'ESRCH';
}
