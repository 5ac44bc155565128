// A Kysely SqliteDatabase over node:sqlite's DatabaseSync (Kysely's SqliteDialect expects the
// better-sqlite3 shape). No native addon: node:sqlite ships with Node 24.
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

const STATEMENT_CACHE_SIZE = 256;

/**
 * Opens (creating if needed) the database file with mode 0600: it holds join-token hashes and
 * authority key references. WAL + synchronous=NORMAL keeps every committed transaction across a
 * process crash (kill -9); only a power loss may drop the last few commits, never consistency.
 */
export function openSqliteDatabase(file: string): SqliteDatabase {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  closeSync(openSync(file, 'a', 0o600));
  chmodSync(file, 0o600);
  const db = new DatabaseSync(file);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = NORMAL');
  db.exec('PRAGMA foreign_keys = ON');
  db.exec('PRAGMA busy_timeout = 5000');
  return adapt(db);
}

function adapt(db: DatabaseSync): SqliteDatabase {
  // Preparing is a large part of a small query's cost; Kysely's SQL text repeats, so cache it.
  const cache = new Map<string, SqliteStatement>();
  return {
    prepare(text: string): SqliteStatement {
      const hit = cache.get(text);
      if (hit !== undefined) return hit;
      const st = wrap(db.prepare(rewriteBegin(text)));
      if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
      cache.set(text, st);
      return st;
    },
    close() {
      cache.clear();
      if (db.isOpen) db.close();
    },
  };
}

/**
 * Kysely begins transactions with a plain (deferred) BEGIN. IMMEDIATE takes the write lock at
 * once, so read-then-write transactions (audit append, bundle mutate) cannot interleave with
 * another process's writer and fail midway with SQLITE_BUSY; busy_timeout makes them wait instead.
 */
function rewriteBegin(text: string): string {
  return text.trim().toLowerCase() === 'begin' ? 'BEGIN IMMEDIATE' : text;
}

function wrap(st: StatementSync): SqliteStatement {
  const args = (params: ReadonlyArray<unknown>) => params as SQLInputValue[];
  return {
    reader: st.columns().length > 0,
    all: (params) => st.all(...args(params)),
    run: (params) => st.run(...args(params)),
    iterate: (params) => st.iterate(...args(params)),
  };
}
