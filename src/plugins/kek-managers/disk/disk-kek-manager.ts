// The `disk` KEK manager: one file per KEK, `<dir>/kek-<id>.key` (mode 0600, base64 of 32 random
// bytes and a newline) in a 0700 directory, by default `<data dir>/secrets`. Written atomically
// (temp file + fsync + rename + directory fsync), so a crash leaves the whole key or none.
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { FailedPreconditionError, InvalidArgumentError } from '../../../core/errors.ts';
import { fsyncDir, writeFileAtomic } from '../../../crypto/keys/atomic-write.ts';
import { KEY_BYTES, kekCheckValue, unwrapKey, wrapKey } from '../../../crypto/secrets/envelope.ts';
import { assertKekId, KEK_ID_PATTERN, type KekManager } from '../kek-manager.ts';

export const DISK_TYPE = 'disk';

export const diskKekConfigSchema = z.strictObject({
  /** Directory of the KEK files; default `<data dir>/secrets`. */
  dir: z.string().min(1).optional(),
});
export type DiskKekConfig = z.output<typeof diskKekConfigSchema>;

/** Default directory of the KEK files, under the server's data directory. */
export const DEFAULT_KEK_DIR = 'secrets';

const FILE_RE = /^kek-([0-9a-f]{16})\.key$/;

/** Whether `name` is a KEK file this manager writes (for removing interrupted temp files). */
export function isKekFileName(name: string): boolean {
  return FILE_RE.test(name);
}

export class DiskKekManager implements KekManager {
  readonly type = DISK_TYPE;
  readonly dir: string;
  readonly #keys = new Map<string, Uint8Array>();

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Creates the directory (0700) when missing; tightens its mode when it is looser. */
  static async create(dir: string): Promise<DiskKekManager> {
    const abs = path.resolve(dir);
    await mkdir(abs, { recursive: true, mode: 0o700 });
    const st = await lstat(abs);
    if (!st.isDirectory()) {
      throw new InvalidArgumentError(`secrets: KEK directory ${abs} is not a directory`);
    }
    if ((st.mode & 0o077) !== 0) await chmod(abs, 0o700);
    return new DiskKekManager(abs);
  }

  locate(id: string): string {
    return path.join(this.dir, `kek-${assertKekId(id)}.key`);
  }

  async create(id: string): Promise<string> {
    const file = this.locate(id);
    const key = new Uint8Array(randomBytes(KEY_BYTES));
    await writeFileAtomic(file, Buffer.from(key).toString('base64') + '\n', 0o600);
    this.#keys.set(id, key);
    return kekCheckValue(key);
  }

  async verify(id: string, checkValue: string): Promise<void> {
    this.#keys.delete(id);
    const key = await this.#load(id);
    if (kekCheckValue(key) !== checkValue) {
      this.#keys.delete(id);
      throw new FailedPreconditionError(
        `secret store: key-encryption key file ${this.locate(id)} does not hold KEK ${id} ` +
          '(its check value differs): restore the right file from a backup of the data directory',
      );
    }
  }

  async wrap(id: string, dataKey: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    return wrapKey(await this.#load(id), dataKey, aad);
  }

  async unwrap(id: string, wrapped: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    return unwrapKey(await this.#load(id), wrapped, aad);
  }

  async destroy(id: string): Promise<void> {
    const file = this.locate(id);
    this.#keys.delete(id);
    try {
      // Only a regular file of our own name is removed; anything else is not ours to judge.
      if (!(await lstat(file)).isFile()) return;
      await unlink(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    await fsyncDir(this.dir);
  }

  async #load(id: string): Promise<Uint8Array> {
    const cached = this.#keys.get(id);
    if (cached) return cached;
    if (!KEK_ID_PATTERN.test(id)) throw new InvalidArgumentError(`invalid KEK id "${id}"`);
    const file = this.locate(id);
    let text: string;
    try {
      if (!(await lstat(file)).isFile()) throw Object.assign(new Error(), { code: 'ENOTFILE' });
      text = await readFile(file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      throw new FailedPreconditionError(
        code === 'ENOENT'
          ? `secret store: key-encryption key file ${file} is missing: restore it from a ` +
              'backup of the data directory (without it the secrets it wraps cannot be read)'
          : `secret store: key-encryption key file ${file} cannot be read (${code})`,
      );
    }
    const key = /^[A-Za-z0-9+/]{43}=\n?$/.test(text) ? Buffer.from(text.trim(), 'base64') : null;
    if (key?.length !== KEY_BYTES) {
      throw new FailedPreconditionError(
        `secret store: key-encryption key file ${file} is not a KEK file ` +
          `(expected ${KEY_BYTES} bytes in base64): restore it from a backup of the data directory`,
      );
    }
    const k = new Uint8Array(key);
    this.#keys.set(id, k);
    return k;
  }
}
