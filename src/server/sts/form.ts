// Strict application/x-www-form-urlencoded parsing for the token endpoint (RFC 6749 §3.2, RFC 8693
// §2.1): every pair is name=value, percent-encoding must be valid UTF-8, parameters appear at
// most once (except `audience` and `resource`, which RFC 8693 lets repeat), empty values count as
// absent, unknown parameters are ignored.
import { OAuthError } from './errors.ts';

export const MAX_FORM_BYTES = 16 * 1024;
const REPEATABLE = new Set(['audience', 'resource']);

export type Form = ReadonlyMap<string, readonly string[]>;

/** The refusal of a body over MAX_FORM_BYTES, on every form endpoint (token, introspect, revoke). */
export function bodyTooLarge(): OAuthError {
  return new OAuthError(
    'invalid_request',
    `request body too large (limit ${MAX_FORM_BYTES} bytes)`,
  );
}

export function parseForm(body: string): Form {
  if (Buffer.byteLength(body, 'utf8') > MAX_FORM_BYTES) throw bodyTooLarge();
  const form = new Map<string, string[]>();
  if (body === '') return form;
  for (const pair of body.split('&')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new OAuthError('invalid_request', 'malformed form body');
    const name = decode(pair.slice(0, eq));
    const value = decode(pair.slice(eq + 1));
    if (value === '') continue;
    const prev = form.get(name);
    if (prev && !REPEATABLE.has(name))
      throw new OAuthError('invalid_request', `parameter "${clip(name)}" is repeated`);
    if (prev) prev.push(value);
    else form.set(name, [value]);
  }
  return form;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    throw new OAuthError('invalid_request', 'malformed form body');
  }
}

export function clip(s: string): string {
  return s.length > 64 ? s.slice(0, 61) + '...' : s;
}
