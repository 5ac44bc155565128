// Per-item outcomes of batch RPCs (tessera/v1 Status): the code is a Tessera error code
// (core/errors.ts) as text, "" for success.
import { errorCodes, type ErrorCode } from '../core/errors.ts';

type ItemResult = { ok: true } | { ok: false; code: string; message: string };

export function statusToWire(r: ItemResult): { code: string; message: string } {
  return r.ok ? { code: '', message: '' } : { code: r.code, message: r.message };
}

const known: ReadonlySet<string> = new Set(errorCodes);

/** The Tessera error code of a failed item's Status.code; anything unknown is internal. */
export function errorCodeFromStatus(code: string): ErrorCode {
  return known.has(code) ? (code as ErrorCode) : 'internal';
}
