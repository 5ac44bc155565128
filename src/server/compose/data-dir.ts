// The server's data directory for the composition root (compose/server.ts): locked before anything
// reads or writes it (server id, keys, SQLite, admin socket), tidied of the temp files of writes a
// crash cut short, and this server's id read from it (or created).
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../crypto/keys/atomic-write.ts';
import { isKeyFileName } from '../../crypto/keys/disk-key-manager.ts';
import { lockDataDir, type DataDirLock } from '../../plugins/data-dir-lock.ts';
import { tidyDataDir, type WarnLog } from '../../plugins/data-dir-tidy.ts';
import { AUDIT_SINKS_DIR, isAuditFileName, isCursorFileName } from './audit.ts';
import { KEYS_DIR } from './authority.ts';
import type { ServerConfig } from './config/compile.ts';
import { kekTidyDirs } from './secrets.ts';

/** In the data directory: this server's id, and the disk key manager's keys. */
const SERVER_ID_FILE = 'server-id';

export interface OpenDataDir {
  readonly lock: DataDirLock;
  readonly serverId: string;
}

/**
 * A second process on the same directory stops here, naming the holder. On any later failure the
 * lock is released again.
 */
export async function openDataDir(config: ServerConfig, log: WarnLog): Promise<OpenDataDir> {
  const lock = lockDataDir(config.data_dir);
  try {
    // The files this server replaces atomically: temp files of a write a crash cut short.
    await tidyDataDir(
      lock,
      [
        { dir: lock.dir, isOurs: (name) => name === SERVER_ID_FILE || isAuditFileName(name) },
        { dir: path.join(lock.dir, KEYS_DIR), isOurs: isKeyFileName },
        { dir: path.join(lock.dir, AUDIT_SINKS_DIR), isOurs: isCursorFileName },
        ...kekTidyDirs(config),
      ],
      log,
    );
    return { lock, serverId: await readOrCreateServerId(config.data_dir) };
  } catch (e) {
    lock.release();
    throw e;
  }
}

/** Written atomically: a crash while writing it never leaves an empty or torn id. */
async function readOrCreateServerId(dataDir: string): Promise<string> {
  const file = path.join(dataDir, SERVER_ID_FILE);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const id = randomUUID();
  await writeFileAtomic(file, id + '\n', 0o600);
  return id;
}
