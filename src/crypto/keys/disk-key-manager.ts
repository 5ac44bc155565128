// Keys persisted as one PKCS#8 PEM file per ref (`<dir>/<ref>.pem`, mode 0600) in a 0700
// directory. The key type is read back from the key itself, so the files need no sidecar.
import { createPrivateKey } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { KeyType } from '../../core/authority.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { fsyncDir, writeFileAtomic } from './atomic-write.ts';
import type { KeyManager, ManagedKey } from '../key-manager.ts';
import { assertKeyRef, isKeyRef } from './key-ref.ts';
import { generatePrivateKey } from './key-types.ts';
import { exportPkcs8Pem, localKey } from './local-key.ts';

const SUFFIX = '.pem';

/** Whether `name` is a key file this manager writes: `<ref>.pem` for a valid ref. */
export function isKeyFileName(name: string): boolean {
  return name.endsWith(SUFFIX) && isKeyRef(name.slice(0, -SUFFIX.length));
}

export class DiskKeyManager implements KeyManager {
  readonly dir: string;
  // Parsed keys are cached: parsing PEM on every signature would dominate the hot path.
  readonly #cache = new Map<string, ManagedKey>();

  private constructor(dir: string) {
    this.dir = dir;
  }

  static async create(dir: string): Promise<DiskKeyManager> {
    const abs = path.resolve(dir);
    await mkdir(abs, { recursive: true, mode: 0o700 });
    const st = await stat(abs);
    if (!st.isDirectory())
      throw new InvalidArgumentError(`key directory ${abs} is not a directory`);
    // Private keys must not be readable by others even if the directory pre-existed.
    if ((st.mode & 0o077) !== 0) await chmod(abs, 0o700);
    return new DiskKeyManager(abs);
  }

  #file(ref: string): string {
    return path.join(this.dir, assertKeyRef(ref) + SUFFIX);
  }

  async generate(ref: string, type: KeyType): Promise<ManagedKey> {
    const file = this.#file(ref);
    const privateKey = await generatePrivateKey(type);
    await writeFileAtomic(file, exportPkcs8Pem(privateKey), 0o600);
    const key = localKey(ref, privateKey);
    this.#cache.set(ref, key);
    return key;
  }

  async get(ref: string): Promise<ManagedKey | null> {
    const file = this.#file(ref);
    const cached = this.#cache.get(ref);
    if (cached) return cached;
    let pem: string;
    try {
      pem = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    const key = localKey(ref, createPrivateKey({ key: pem, format: 'pem' }));
    this.#cache.set(ref, key);
    return key;
  }

  async delete(ref: string): Promise<void> {
    const file = this.#file(ref);
    this.#cache.delete(ref);
    try {
      await unlink(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    await fsyncDir(this.dir);
  }

  locate(ref: string): string {
    return this.#file(ref);
  }

  async list(): Promise<string[]> {
    const names = await readdir(this.dir);
    return names
      .filter((n) => n.endsWith(SUFFIX) && !n.startsWith('.'))
      .map((n) => n.slice(0, -SUFFIX.length))
      .sort();
  }
}
