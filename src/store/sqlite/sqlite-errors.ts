// node:sqlite errors → ErrorClass. node:sqlite reports the extended result code in `errcode`
// and names the violated columns (not the constraint) in the message, so columns are mapped back
// to the constraint names the PostgreSQL schema uses.
import type { ErrorClass } from '../sql/dialect.ts';

const SQLITE_CONSTRAINT_PRIMARYKEY = 1555;
const SQLITE_CONSTRAINT_UNIQUE = 2067;
/** Primary codes meaning "try again later": BUSY, LOCKED, IOERR, FULL, CANTOPEN. */
const UNAVAILABLE = new Map([
  [5, 'database is locked'],
  [6, 'table is locked'],
  [10, 'disk I/O error'],
  [13, 'disk is full'],
  [14, 'cannot open database file'],
]);

const uniqueByColumns: Readonly<Record<string, string>> = {
  'entries.identity_hash': 'entries_identity_uq',
  'secret_keks.state': 'secret_keks_one_active',
};

export function classifySqliteError(e: unknown): ErrorClass {
  if (!(e instanceof Error)) return { kind: 'other' };
  const { code, errcode } = e as { code?: unknown; errcode?: unknown };
  if (code === 'ERR_INVALID_STATE' && /not open/.test(e.message)) {
    return { kind: 'unavailable', detail: 'database is closed' };
  }
  if (code !== 'ERR_SQLITE_ERROR' || typeof errcode !== 'number') return { kind: 'other' };
  if (errcode === SQLITE_CONSTRAINT_PRIMARYKEY || errcode === SQLITE_CONSTRAINT_UNIQUE) {
    const columns = e.message.replace(/^UNIQUE constraint failed: /, '');
    const table = columns.split('.')[0] ?? '';
    const constraint =
      errcode === SQLITE_CONSTRAINT_PRIMARYKEY
        ? `${table}_pkey`
        : (uniqueByColumns[columns] ?? `${table}_uq`);
    return { kind: 'unique', constraint };
  }
  const unavailable = UNAVAILABLE.get(errcode & 0xff);
  return unavailable === undefined
    ? { kind: 'other' }
    : { kind: 'unavailable', detail: unavailable };
}
