// The one entry the server's composition root uses: open (and migrate) the configured store.
import type { Clock } from '../core/clock.ts';
import { InvalidArgumentError } from '../core/errors.ts';
import type { Store } from './types.ts';
import { openSqliteStore } from './sqlite/sqlite-store.ts';
import { openPostgresStore } from './postgres/postgres-store.ts';

export type StoreOptions =
  | { readonly kind: 'sqlite'; readonly path: string }
  | {
      readonly kind: 'postgres';
      readonly url: string;
      /** Connections in the pool; default 10. */
      readonly poolSize?: number;
      /** How long to wait for a connection before UnavailableError; default 3000 ms. */
      readonly connectTimeoutMs?: number;
    };

const systemClock: Clock = { now: () => Date.now() };

/**
 * Opens the store and applies pending migrations. `clock` stamps change events and migrations;
 * tests pass a ManualClock.
 */
export async function openStore(options: StoreOptions, clock: Clock = systemClock): Promise<Store> {
  switch (options.kind) {
    case 'sqlite':
      if (options.path === '') throw new InvalidArgumentError('store path: must not be empty');
      return openSqliteStore(options.path, clock);
    case 'postgres': {
      const poolSize = options.poolSize ?? 10;
      if (!Number.isInteger(poolSize) || poolSize < 1 || poolSize > 1000) {
        throw new InvalidArgumentError('store pool size: must be between 1 and 1000');
      }
      const connectTimeoutMs = options.connectTimeoutMs ?? 3000;
      return openPostgresStore({ url: options.url, poolSize, connectTimeoutMs }, clock);
    }
  }
}
