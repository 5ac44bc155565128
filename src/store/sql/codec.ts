// Value conversions between domain objects and portable column types.
import { InvalidArgumentError } from '../../core/errors.ts';
import type { Selector } from '../../core/selector.ts';

export const toFlag = (b: boolean): number => (b ? 1 : 0);
export const fromFlag = (v: unknown): boolean => v === 1 || v === true || v === '1';

/** A plain Uint8Array copy: drivers hand back Buffers (pg) or views over their own memory. */
export function toBytes(v: Uint8Array): Uint8Array {
  return new Uint8Array(v);
}

/** A Buffer view, which both drivers bind as a blob/bytea. */
export function bindBytes(v: Uint8Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

export const toBase64 = (v: Uint8Array): string => bindBytes(v).toString('base64');
export const fromBase64 = (s: string): Uint8Array => toBytes(Buffer.from(s, 'base64'));

export function selectorsJson(selectors: readonly Selector[]): string {
  return JSON.stringify(selectors.map((s) => ({ type: s.type, value: s.value })));
}

export function parseSelectorsJson(text: string): Selector[] {
  return (JSON.parse(text) as Selector[]).map((s) => ({ type: s.type, value: s.value }));
}

export const MAX_PAGE_SIZE = 1000;

export function checkPageSize(pageSize: number): void {
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
    throw new InvalidArgumentError(`page_size: must be between 1 and ${MAX_PAGE_SIZE}`);
  }
}

export function checkLimit(name: string, limit: number, max = 100_000): void {
  if (!Number.isInteger(limit) || limit < 1 || limit > max) {
    throw new InvalidArgumentError(`${name}: must be between 1 and ${max}`);
  }
}

const TOKEN_PREFIX = 'k1:';

/** Opaque page token: the last key returned, so the next page is "key > token" (stable order). */
export function encodePageToken(lastKey: string): string {
  return Buffer.from(TOKEN_PREFIX + lastKey, 'utf8').toString('base64url');
}

/** "" means the first page. Untrusted, from the caller: anything not made by encode is rejected. */
export function decodePageToken(token: string): string | null {
  if (token === '') return null;
  const text = /^[A-Za-z0-9_-]{1,8192}$/.test(token)
    ? Buffer.from(token, 'base64url').toString('utf8')
    : '';
  if (!text.startsWith(TOKEN_PREFIX) || text.length === TOKEN_PREFIX.length) {
    throw new InvalidArgumentError('page_token: malformed');
  }
  return text.slice(TOKEN_PREFIX.length);
}

/** Turns the pageSize + 1 rows fetched into a page and the token for the next one. */
export function toPage<R, T>(
  rows: R[],
  pageSize: number,
  keyOf: (r: R) => string,
  map: (r: R) => T,
): { items: T[]; nextPageToken: string } {
  const more = rows.length > pageSize;
  const pageRows = more ? rows.slice(0, pageSize) : rows;
  const last = pageRows[pageRows.length - 1];
  return {
    items: pageRows.map(map),
    nextPageToken: more && last !== undefined ? encodePageToken(keyOf(last)) : '',
  };
}
