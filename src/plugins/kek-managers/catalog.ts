// Built-in KEK managers, listed explicitly: no discovery. The server config names exactly one
// (`secrets.key_manager: { disk: {...} }`); its config was validated by the server config schema.
import path from 'node:path';
import { InvalidArgumentError } from '../../core/errors.ts';
import {
  DEFAULT_KEK_DIR,
  DiskKekManager,
  diskKekConfigSchema,
  DISK_TYPE,
  type DiskKekConfig,
} from './disk/disk-kek-manager.ts';
import type { KekManager } from './kek-manager.ts';

export type { KekManager } from './kek-manager.ts';
export { assertKekId, KEK_ID_PATTERN } from './kek-manager.ts';
export {
  DEFAULT_KEK_DIR,
  DiskKekManager,
  diskKekConfigSchema,
  DISK_TYPE,
  isKekFileName,
} from './disk/disk-kek-manager.ts';

export interface KekManagerConfig {
  readonly disk?: DiskKekConfig | undefined;
}

export const builtinKekManagers = Object.freeze({ [DISK_TYPE]: diskKekConfigSchema });

/** What the composition root hands KEK managers. */
export interface KekManagerDeps {
  /** The server's data directory (relative `dir` settings resolve against it too). */
  readonly dataDir: string;
}

/** Builds the configured manager; `disk` with its defaults when none is named. */
export async function createKekManager(
  config: KekManagerConfig,
  deps: KekManagerDeps,
): Promise<KekManager> {
  const types = Object.keys(config).filter((k) => config[k as keyof KekManagerConfig] != null);
  if (types.length > 1) {
    throw new InvalidArgumentError(
      `config: secrets.key_manager: name one KEK manager, not ${types.join(', ')}`,
    );
  }
  const dir = config.disk?.dir ?? DEFAULT_KEK_DIR;
  return DiskKekManager.create(path.resolve(deps.dataDir, dir));
}
