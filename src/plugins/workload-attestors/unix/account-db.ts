// User and group names from /etc/passwd and /etc/group, parsed here rather than through NSS: the
// agent has no libc bindings, and the files are what the kernel-facing ids are named by on most
// hosts. Names held only in LDAP/SSSD are not seen; those workloads still get uid/gid selectors.
// The parsed table is reused while the file's inode, size and mtime stay the same.
import { readFile, stat } from 'node:fs/promises';
import { FailedPreconditionError } from '../../../core/errors.ts';

const MAX_DB_BYTES = 32 * 1024 * 1024;

/** id → name; the first line for an id wins, as with getpwuid/getgrgid. */
export type IdNames = ReadonlyMap<number, string>;

/** `name:password:id:...` lines; comments, NIS `+`/`-` lines and malformed lines are skipped. */
export function parseIdNames(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) {
      continue;
    }
    const fields = line.split(':');
    const name = fields[0];
    const id = fields[2];
    if (!name || id === undefined || !/^\d{1,10}$/.test(id)) continue;
    if (/[\s\u0000-\u001f\u007f]/.test(name)) continue;
    const n = Number(id);
    if (!out.has(n)) out.set(n, name);
  }
  return out;
}

/** Re-reads the file only when it changed; a missing file is an empty table. */
export class IdNameFile {
  readonly path: string;
  #key = '';
  #names: IdNames = new Map();
  #checkedAt = -Infinity;

  readonly #recheckMs: number;

  /** `recheckMs`: how long a read is trusted before the file's stat is looked at again. */
  constructor(path: string, recheckMs = 1000) {
    this.path = path;
    this.#recheckMs = recheckMs;
  }

  async names(): Promise<IdNames> {
    // Attestation runs on every Workload API call: look at the file at most once a second.
    const now = performance.now();
    if (now - this.#checkedAt < this.#recheckMs) return this.#names;
    this.#checkedAt = now;
    let s;
    try {
      s = await stat(this.path, { bigint: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return new Map();
      throw new FailedPreconditionError(`unix: cannot read ${this.path}: ${code ?? String(e)}`, {
        cause: e,
      });
    }
    if (s.size > BigInt(MAX_DB_BYTES)) {
      throw new FailedPreconditionError(`unix: ${this.path} is larger than ${MAX_DB_BYTES} bytes`);
    }
    const key = `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
    if (key !== this.#key) {
      const text = await readFile(this.path, 'utf8');
      this.#names = parseIdNames(text);
      this.#key = key;
    }
    return this.#names;
  }
}
