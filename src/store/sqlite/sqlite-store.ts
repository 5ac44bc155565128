// The embedded default store: one SQLite file, opened and migrated.
import { Kysely, SqliteDialect } from 'kysely';
import type { Clock } from '../../core/clock.ts';
import type { Store } from '../types.ts';
import type { SqlDialect } from '../sql/dialect.ts';
import type { Schema } from '../sql/schema.ts';
import { migrate } from '../sql/migrations.ts';
import { createSqlStore } from '../sql/sql-store.ts';
import { toStoreError } from '../sql/errors.ts';
import { openSqliteDatabase } from './sqlite-database.ts';
import { classifySqliteError } from './sqlite-errors.ts';

export const sqliteDialect: SqlDialect = Object.freeze({
  name: 'sqlite',
  rowLocks: false,
  ddl: Object.freeze({
    key: 'text',
    bytes: 'blob',
    // AUTOINCREMENT: ids are never reused, even after prune() empties the table.
    autoId: 'integer primary key autoincrement',
  }),
  // SQLITE_MAX_VARIABLE_NUMBER is 32766 in the bundled SQLite.
  maxParams: 30_000,
  // BEGIN IMMEDIATE already excludes every other writer.
  lockMigrations: async () => {},
  classifyError: classifySqliteError,
});

export async function openSqliteStore(file: string, clock: Clock): Promise<Store> {
  let db: Kysely<Schema> | undefined;
  try {
    const database = openSqliteDatabase(file);
    db = new Kysely<Schema>({ dialect: new SqliteDialect({ database }) });
    await migrate(db, sqliteDialect, clock);
    return createSqlStore(db, sqliteDialect, clock);
  } catch (e) {
    await db?.destroy();
    throw toStoreError(e, sqliteDialect);
  }
}
