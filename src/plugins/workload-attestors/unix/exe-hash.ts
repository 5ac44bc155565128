// sha256 of a process's executable, read through /proc/<pid>/exe: that link opens the inode the
// process is running even when the path has since been replaced or deleted, so the digest is of
// what runs, not of what the path names now. Digests are cached by (dev, inode, size, mtime,
// ctime) of the opened file: replacing the file changes the inode, rewriting it in place changes
// mtime and ctime, and ctime cannot be set back by a user (unlike mtime with utimes).
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { ResourceExhaustedError } from '../../../core/errors.ts';
import { procFsError } from './proc-error.ts';

const CHUNK_BYTES = 1024 * 1024;
const MAX_CACHE_ENTRIES = 4096;

export class ExecutableHasher {
  readonly #maxBytes: number;
  /** Insertion order is recency order: a hit is moved to the end, the oldest is evicted. */
  readonly #cache = new Map<string, Promise<string>>();

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Hex sha256 of the file `exeLink` opens; `pid` is for error messages. */
  async hash(exeLink: string, pid: number, signal: AbortSignal): Promise<string> {
    // Fast path, taken on almost every call: stat through the link (the inode the process runs)
    // and reuse the digest already computed for that (dev, inode, size, mtime, ctime).
    const cached = this.#cached(exeLink);
    if (cached) return untilAborted(cached, signal);
    let fh: FileHandle;
    try {
      fh = await open(exeLink, 'r');
    } catch (e) {
      throw procFsError(e, 'unix', pid, exeLink);
    }
    let handedOff = false;
    try {
      const st = await fh.stat({ bigint: true });
      if (st.size > BigInt(this.#maxBytes)) {
        throw new ResourceExhaustedError(
          `unix: the executable of process ${pid} is ${st.size} bytes, more than max_binary_bytes (${this.#maxBytes}); raise max_binary_bytes or set hash_executable: false`,
        );
      }
      const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
      let pending = this.#cache.get(key);
      if (pending) {
        this.#cache.delete(key);
      } else {
        // The digest owns the handle from here and closes it; concurrent attestations of the same
        // binary share it, and one caller giving up does not cancel it for the others.
        const digest = this.#digest(fh, pid).finally(() => fh.close());
        handedOff = true;
        digest.catch(() => {
          if (this.#cache.get(key) === digest) this.#cache.delete(key);
        });
        pending = digest;
      }
      this.#cache.set(key, pending);
      if (this.#cache.size > MAX_CACHE_ENTRIES) {
        const oldest = this.#cache.keys().next().value;
        if (oldest !== undefined) this.#cache.delete(oldest);
      }
      return await untilAborted(pending, signal);
    } finally {
      if (!handedOff) await fh.close();
    }
  }

  #cached(exeLink: string): Promise<string> | undefined {
    let st;
    try {
      st = statSync(exeLink, { bigint: true });
    } catch {
      return undefined; // the slow path reports the error
    }
    return this.#cache.get(`${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`);
  }

  async #digest(fh: FileHandle, pid: number): Promise<string> {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(CHUNK_BYTES);
    let total = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK_BYTES, total);
      if (bytesRead === 0) break;
      total += bytesRead;
      // The size was checked before reading; a file that grows while read is still bounded.
      if (total > this.#maxBytes) {
        throw new ResourceExhaustedError(
          `unix: the executable of process ${pid} is more than max_binary_bytes (${this.#maxBytes})`,
        );
      }
      h.update(buf.subarray(0, bytesRead));
    }
    return h.digest('hex');
  }
}

function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
