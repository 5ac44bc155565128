// The few things that differ between SQLite and PostgreSQL, passed into the shared store code.
import type { Kysely, SelectQueryBuilder, Transaction } from 'kysely';
import type { Clock } from '../../core/clock.ts';
import type { Schema } from './schema.ts';
import type { CommitNotifier } from './commit-notifier.ts';

/** What a driver error means, decided by the dialect that knows its driver's error shapes. */
export type ErrorClass =
  | { readonly kind: 'unique'; readonly constraint: string }
  | { readonly kind: 'unavailable'; readonly detail: string }
  | { readonly kind: 'other' };

/** Column types spelled per dialect for the DDL in migrations.ts. */
export interface DdlTypes {
  /** Text that sorts bytewise, so pagination by key is the same in both dialects. */
  readonly key: string;
  readonly bytes: string;
  /** An auto-assigned, never reused, increasing integer primary key. */
  readonly autoId: string;
}

export interface SqlDialect {
  readonly name: 'sqlite' | 'postgres';
  /**
   * Whether SELECT ... FOR UPDATE exists. SQLite has no row locks: its transactions begin
   * IMMEDIATE (one writer at a time), which gives the same guarantee.
   */
  readonly rowLocks: boolean;
  readonly ddl: DdlTypes;
  /** Bound parameters per statement, with a margin under the driver's limit. */
  readonly maxParams: number;
  /** Runs first inside the migration transaction so concurrent starters do not race. */
  lockMigrations(trx: Transaction<Schema>): Promise<void>;
  classifyError(e: unknown): ErrorClass;
}

export type Db = Kysely<Schema>;

/** What every aggregate is built from: a database handle (maybe a transaction) and its dialect. */
export interface SqlContext {
  readonly db: Db;
  readonly dialect: SqlDialect;
  readonly clock: Clock;
  /** Opens transactions that may announce commits, and delivers the announcements. */
  readonly notifier: CommitNotifier;
}

/** Runs fn atomically: inside the caller's transaction when there is one, else in a new one. */
export function atomic<T>(ctx: SqlContext, fn: (db: Db) => Promise<T>): Promise<T> {
  if (ctx.db.isTransaction) return fn(ctx.db);
  return ctx.notifier.transaction(ctx.db, fn);
}

/** Adds FOR UPDATE where the dialect has row locks. */
export function lockRows<DB, TB extends keyof DB, O>(
  ctx: SqlContext,
  q: SelectQueryBuilder<DB, TB, O>,
): SelectQueryBuilder<DB, TB, O> {
  return ctx.dialect.rowLocks ? q.forUpdate() : q;
}

/** Splits rows so that one multi-row statement stays under the parameter limit. */
export function chunks<T>(rows: readonly T[], paramsPerRow: number, maxParams: number): T[][] {
  const size = Math.max(1, Math.floor(maxParams / paramsPerRow));
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
  return out;
}
