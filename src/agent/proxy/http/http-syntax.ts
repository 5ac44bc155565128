// The character classes of HTTP/1.1 heads (RFC 9110 §5.1, §5.5), checked with a table per
// character rather than a regular expression: every head the proxy reads or writes passes through
// these, several times a request. Pure.

/** tchar: `!#$%&'*+-.^_` + "`" + `|~`, digits, letters. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TCHAR[c.charCodeAt(0)] = 1;
}

/** Whether `s` is a non-empty token (a method, a header name). */
export function isToken(s: string): boolean {
  const n = s.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || TCHAR[c] === 0) return false;
  }
  return true;
}

/**
 * Whether `s` has a character a field value may not (RFC 9110 §5.5): anything but HTAB, SP,
 * VCHAR and obs-text (0x80–0xFF) — so CR, LF, NUL, other controls, DEL, and anything past latin1.
 */
export function hasBadValueChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 ? c !== 0x09 : c === 0x7f || c > 0xff) return true;
  }
  return false;
}

/** Whether `s` has a space, a control character or anything past latin1 (a request target). */
export function hasBadTargetChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || c > 0xff) return true;
  }
  return false;
}

/** The value without leading and trailing SP / HTAB (OWS), and nothing else trimmed. */
export function trimOws(v: string): string {
  let a = 0;
  let b = v.length;
  while (a < b && (v.charCodeAt(a) === 0x20 || v.charCodeAt(a) === 0x09)) a++;
  while (b > a && (v.charCodeAt(b - 1) === 0x20 || v.charCodeAt(b - 1) === 0x09)) b--;
  return a === 0 && b === v.length ? v : v.slice(a, b);
}

/** Whether `s` is only decimal digits, 1 to 15 of them (a Content-Length). */
export function isLength(s: string): boolean {
  const n = s.length;
  if (n === 0 || n > 15) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/** Whether a comma-separated header value lists `token` (compared case-insensitively). */
export function listHas(value: string, token: string): boolean {
  if (value.length === token.length) return value.toLowerCase() === token;
  for (const t of value.split(',')) if (trimOws(t).toLowerCase() === token) return true;
  return false;
}
