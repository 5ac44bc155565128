// Writing the files a `tessera cloud env` builder names (the Google external-account credential
// config), before the variables naming them are printed. Each is written 0600 to a temporary
// name in its directory (O_EXCL, so never through a planted link), synced, and renamed over the
// target. An existing target is replaced only when it is a regular file of this uid holding the
// same kind of document (same JSON `type`): running the command again refreshes its own config,
// but a symlink, another user's file or anything else (a service-account key, a shell profile)
// is refused, naming the path, and left as it is.
import { randomBytes } from 'node:crypto';
import { lstat, open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError } from '../../core/errors.ts';
import { readBounded, TooLargeError } from '../bounded-read.ts';
import type { EnvFile } from './env-input.ts';

const MAX_EXISTING_BYTES = 64 * 1024;

export async function writeEnvFiles(files: readonly EnvFile[], uid: number): Promise<void> {
  for (const f of files) await writeEnvFile(f, uid);
}

async function writeEnvFile(f: EnvFile, uid: number): Promise<void> {
  const refuse = (why: string) =>
    new InvalidArgumentError(`${f.flag}: ${f.path.slice(0, 200)}: ${why}`);
  if (!path.isAbsolute(f.path)) throw refuse('not an absolute path');
  await checkReplaceable(f, uid, refuse);
  const tmp = path.join(
    path.dirname(f.path),
    `.${path.basename(f.path)}.${randomBytes(6).toString('hex')}.tmp`,
  );
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(f.content);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, f.path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw refuse(`cannot write: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

async function checkReplaceable(
  f: EnvFile,
  uid: number,
  refuse: (why: string) => Error,
): Promise<void> {
  let st;
  try {
    st = await lstat(f.path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw refuse(`cannot inspect: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const keep = 'refusing to replace it (remove it, or choose another path)';
  if (!st.isFile()) throw refuse(`exists and is not a regular file; ${keep}`);
  if (st.uid !== uid) throw refuse(`exists and belongs to uid ${st.uid}; ${keep}`);
  let existing: unknown;
  try {
    existing = JSON.parse((await readBounded(f.path, MAX_EXISTING_BYTES)).toString('utf8'));
  } catch (e) {
    if (e instanceof TooLargeError || e instanceof SyntaxError) existing = undefined;
    else throw refuse(`cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (typeOf(existing) === undefined || typeOf(existing) !== typeOf(JSON.parse(f.content))) {
    throw refuse(
      `exists and is not a config of type ${String(typeOf(JSON.parse(f.content)))}; ${keep}`,
    );
  }
}

const typeOf = (doc: unknown): string | undefined => {
  const t = (doc as { type?: unknown } | null)?.type;
  return typeof t === 'string' ? t : undefined;
};
