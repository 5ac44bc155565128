// The part of a process's fingerprint (attestation-cache.ts) that changes when it maps a new
// shared library or unmaps one: the attributes conditions read (`libraries`, docs/posture.md)
// come from the same mappings (workload-attributes.ts).
//
// Reading /proc/<pid>/maps is the costly part (~50 µs per 4 KiB page of it, and a node process
// has a few pages), so it is read only when a cheap trigger moved: the VmExe and VmLib lines of
// /proc/<pid>/status, which the fingerprint reads anyway. The kernel counts there the size of
// every executable, non-writable mapping, so mapping or unmapping a library's code moves them.
// A JIT that flips its code pages to read+execute moves them too; then maps is read, the set of
// mapped files found the same, and nothing else happens. What the trigger misses: a library
// unmapped and another of exactly the same code size mapped between two checks; that process's
// next attestation (any new call or stream) sees it.
import { preadWhole } from './proc-files.ts';

/** Bytes of /proc/<pid>/maps read at most (as workload-attributes.ts reads). */
export const MAX_MAPS_BYTES = 4 * 1024 * 1024;

/** The VmExe: and VmLib: lines of /proc/<pid>/status ('' when the kernel has none: no trigger). */
export function executableSizes(status: string): string {
  let out = '';
  for (const name of ['\nVmExe:', '\nVmLib:']) {
    const at = status.indexOf(name);
    if (at < 0) continue;
    const end = status.indexOf('\n', at + 1);
    out += status.slice(at + 1, end < 0 ? undefined : end);
  }
  return out;
}

/**
 * The files a process maps executable, as one comparable string: "dev inode path" per file,
 * sorted, each once. Addresses are left out (the same files at other addresses are the same
 * code), dev and inode kept (another file at the same path is another library).
 */
export function mappedFilesSignature(maps: string): string {
  const files = new Set<string>();
  for (const line of maps.split('\n')) {
    // address perms offset dev inode path
    const m = /^\S+\s+\S\S(\S)\S\s+\S+\s+(\S+)\s+(\d+)\s+(\/.*)$/.exec(line);
    if (m === null || m[1] !== 'x' || m[3] === '0') continue;
    files.add(`${m[2]} ${m[3]} ${m[4]}`);
  }
  return [...files].sort().join('\n');
}

/**
 * A held /proc/<pid>/maps read whole: maps is a seq_file, and one read returns a page or so of
 * it, so read on until the end. Throws past MAX_MAPS_BYTES (a fingerprint must be complete).
 */
export function preadMaps(fd: number): string {
  return preadWhole(fd, MAX_MAPS_BYTES, '/proc maps');
}

/**
 * Per held process: the trigger when maps was last read, and what it said. The signature is
 * read again only when the trigger differs (or was never read).
 */
export class MappedFiles {
  #trigger: string | undefined;
  #signature = '';

  /** `read` reads the process's maps; called only when `trigger` moved since the last call. */
  signature(trigger: string, read: () => string): string {
    if (trigger !== '' && trigger === this.#trigger) return this.#signature;
    const signature = mappedFilesSignature(read());
    this.#trigger = trigger;
    this.#signature = signature;
    return signature;
  }
}
