// PostgreSQL store: the scale-out path where several servers share one database. Row locks and
// an advisory lock for migrations keep them correct (see the aggregates in ../sql).
import { createHash, randomUUID } from 'node:crypto';
import { Kysely, PostgresDialect, type Transaction, sql } from 'kysely';
import pg from 'pg';
import type { Clock } from '../../core/clock.ts';
import type { Store } from '../types.ts';
import type { SqlDialect } from '../sql/dialect.ts';
import type { Schema } from '../sql/schema.ts';
import { migrate } from '../sql/migrations.ts';
import { createSqlStore } from '../sql/sql-store.ts';
import { toStoreError } from '../sql/errors.ts';
import { classifyPostgresError } from './postgres-errors.ts';
import { CommitNotifier } from '../sql/commit-notifier.ts';
import { PostgresListener, notifyPayload } from './postgres-listener.ts';

/** Arbitrary constant naming "Tessera schema migrations" among advisory locks. */
const MIGRATION_LOCK_KEY = 0x7e55e2a;
const INT8_OID = 20;

export const postgresDialect: SqlDialect = Object.freeze({
  name: 'postgres',
  rowLocks: true,
  ddl: Object.freeze({
    // Bytewise order, so page tokens ("key > last") agree with SQLite and ignore the locale.
    key: 'text collate "C"',
    bytes: 'bytea',
    autoId: 'bigint generated always as identity primary key',
  }),
  // The protocol allows 65535 bind parameters per statement.
  maxParams: 60_000,
  lockMigrations: async (trx: Transaction<Schema>) => {
    await sql`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`.execute(trx);
  },
  classifyError: classifyPostgresError,
});

export interface PostgresStoreOptions {
  readonly url: string;
  readonly poolSize: number;
  readonly connectTimeoutMs: number;
}

/**
 * int8 → number for this pool only (not pg.types globally): every bigint here is an epoch-ms
 * timestamp, a sequence or a count, all far below 2^53.
 */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
};

export const STATEMENT_TIMEOUT_MS = 30_000;

export function createPool(o: PostgresStoreOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: o.url,
    max: o.poolSize,
    connectionTimeoutMillis: o.connectTimeoutMs,
    // Bounds on the database side: no statement runs, and no transaction sits idle holding row
    // locks, for longer than this (a stuck server must not block every other one).
    statement_timeout: STATEMENT_TIMEOUT_MS,
    idle_in_transaction_session_timeout: STATEMENT_TIMEOUT_MS,
    types,
  });
  // A client losing its connection emits 'error': on the pool while idle, on the client itself
  // while checked out (Kysely adds no listener). Unheard, either would crash the process; the
  // query in flight or the next one fails and is mapped to UnavailableError instead.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

/**
 * The NOTIFY channel of the store's schema: channels are per database, and stores in different
 * schemas of one database (several trust domains, the tests) must not wake each other. Hashed to
 * stay under PostgreSQL's 63-byte identifier limit.
 */
export function commitChannel(schema: string): string {
  return `tessera_commits_${createHash('sha256').update(schema).digest('hex').slice(0, 24)}`;
}

export async function openPostgresStore(o: PostgresStoreOptions, clock: Clock): Promise<Store> {
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool: createPool(o) }) });
  let listener: PostgresListener | undefined;
  try {
    await migrate(db, postgresDialect, clock);
    const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
    const channel = commitChannel(rows[0]?.schema ?? '');
    const origin = randomUUID();
    // NOTIFY inside the writing transaction: PostgreSQL delivers it on commit only.
    const notifier = new CommitNotifier(async (trx, topic) => {
      await sql`select pg_notify(${channel}, ${notifyPayload(topic, origin)})`.execute(trx);
    });
    listener = await PostgresListener.start({
      url: o.url,
      connectTimeoutMs: o.connectTimeoutMs,
      channel,
      origin,
      deliver: (topic, source) => notifier.deliver(topic, source),
    });
    const started = listener;
    return createSqlStore(db, postgresDialect, clock, {
      notifier,
      onClose: () => started.close(),
    });
  } catch (e) {
    await listener?.close();
    await db.destroy();
    throw toStoreError(e, postgresDialect);
  }
}
