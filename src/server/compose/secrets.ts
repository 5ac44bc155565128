// Wiring of the secret store for the composition root: the configured KEK manager (plugins/
// kek-managers) and the service, whose start checks every KEK file the datastore needs.
import path from 'node:path';
import type { Clock } from '../../core/clock.ts';
import {
  createKekManager,
  DEFAULT_KEK_DIR,
  isKekFileName,
} from '../../plugins/kek-managers/catalog.ts';
import type { AtomicWriteDir } from '../../plugins/data-dir-tidy.ts';
import type { Store } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';
import { SecretStoreService } from '../broker/secret-store.ts';
import type { ServerConfig } from './config/compile.ts';

/**
 * The KEK directory when it is the default one inside the locked data directory: temp files of
 * interrupted KEK writes there are this server's and removed at start. A configured directory
 * elsewhere may be shared, so it is left alone.
 */
export function kekTidyDirs(config: ServerConfig): AtomicWriteDir[] {
  if (config.secrets.key_manager.disk.dir !== undefined) return [];
  return [{ dir: path.join(config.data_dir, DEFAULT_KEK_DIR), isOurs: isKekFileName }];
}

export async function buildSecretStore(
  config: ServerConfig,
  d: { store: Store; auditor: Auditor; clock: Clock; serverId: string },
): Promise<SecretStoreService> {
  const kek = await createKekManager(config.secrets.key_manager, { dataDir: config.data_dir });
  return SecretStoreService.create({ ...d, kek });
}
