// pg errors → ErrorClass. Server errors carry a SQLSTATE in `code`; socket errors carry errno
// names; pg's own client/pool failures carry neither, so those few are recognized by message.
import type { ErrorClass } from '../sql/dialect.ts';

const UNIQUE_VIOLATION = '23505';
/** admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections. */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300']);
/**
 * serialization_failure, deadlock_detected, lock_not_available, query_canceled (statement or lock
 * timeout): the transaction was rolled back and nothing changed, so the caller may simply retry —
 * they are reported as unavailable (retryable), not as internal errors.
 */
const RETRYABLE_STATES: ReadonlyMap<string, string> = new Map([
  ['40001', 'serialization failure (concurrent update), retry'],
  ['40P01', 'deadlock detected, retry'],
  ['55P03', 'lock not available, retry'],
  ['57014', 'statement timed out, retry'],
]);
const SOCKET_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);
const CLIENT_FAILURES =
  /timeout exceeded when trying to connect|Connection terminated|not queryable|Cannot use a pool after calling end/;

export function classifyPostgresError(e: unknown): ErrorClass {
  if (!(e instanceof Error)) return { kind: 'other' };
  const { code, constraint } = e as { code?: unknown; constraint?: unknown };
  if (code === UNIQUE_VIOLATION) {
    return { kind: 'unique', constraint: typeof constraint === 'string' ? constraint : '' };
  }
  if (typeof code === 'string') {
    if (UNAVAILABLE_STATES.has(code) || /^08[0-9A-Z]{3}$/.test(code)) {
      return { kind: 'unavailable', detail: e.message };
    }
    const retryable = RETRYABLE_STATES.get(code);
    if (retryable !== undefined) return { kind: 'unavailable', detail: retryable };
    if (SOCKET_ERRORS.has(code)) return { kind: 'unavailable', detail: socketDetail(e, code) };
  }
  if (CLIENT_FAILURES.test(e.message)) return { kind: 'unavailable', detail: e.message };
  return { kind: 'other' };
}

/** Connecting to "localhost" may fail on ::1 and 127.0.0.1 at once: an AggregateError, no message. */
function socketDetail(e: Error, code: string): string {
  return e.message !== '' ? e.message : code;
}
