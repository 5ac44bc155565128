// The head of the request the proxy sends upstream, built from the client's (untrusted) head:
// the path checked against the server workload's path prefix, hop-by-hop headers dropped, Host
// set to the server workload's, and the credential put where `present` says — replacing whatever
// the client sent there. Pure: http-forward.ts sends it.
import type { ServerWorkload } from '../../../core/access.ts';
import { HttpAnswer } from './http-answer.ts';
import { hasBadTargetChar, hasBadValueChar, isLength, isToken } from './http-syntax.ts';
import { withQueryParam, type Injection } from './presenters.ts';

/** Longest request target accepted (path and query). */
export const MAX_TARGET_BYTES = 8192;

/** Connection-level headers (RFC 9110 §7.6.1 and the usual non-standard ones). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'http2-settings',
  'host',
]);

export type HeaderMap = Record<string, string | string[]>;

/** Whether `path` (no query) is within `prefix`: "" = everything; else the prefix's segments. */
export function underPrefix(path: string, prefix: string): boolean {
  if (prefix === '' || prefix === '/') return true;
  if (prefix.endsWith('/')) return path.startsWith(prefix);
  return path === prefix || path.startsWith(prefix + '/');
}

/**
 * The checked origin-form target: starts with "/", bounded, no dot segments (raw or
 * percent-encoded, with "/" or "\" separators) that a server would resolve outside the prefix.
 */
export function checkTarget(target: string): { path: string; query: string } {
  if (Buffer.byteLength(target) > MAX_TARGET_BYTES) {
    throw new HttpAnswer(414, { error: `request target longer than ${MAX_TARGET_BYTES} bytes` });
  }
  if (!target.startsWith('/')) {
    throw new HttpAnswer(400, { error: 'request target must be a path starting with "/"' });
  }
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  // Without "%", "." or "\\" there is neither an encoding to check nor a dot segment.
  if (!/[%.\\]/.test(path)) return { path, query: q < 0 ? '' : target.slice(q) };
  let decoded = path;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    throw new HttpAnswer(400, { error: 'request path: malformed percent-encoding' });
  }
  if (decoded.split(/[/\\]/).some((s) => s === '.' || s === '..')) {
    throw new HttpAnswer(400, { error: 'request path must not contain "." or ".." segments' });
  }
  return { path, query: q < 0 ? '' : target.slice(q) };
}

/** The Host header naming the server workload (the port left out when it is the scheme's). */
export function hostHeader(w: ServerWorkload, tls: boolean): string {
  const host = w.host.includes(':') ? `[${w.host}]` : w.host;
  return w.port === (tls ? 443 : 80) ? host : `${host}:${w.port}`;
}

/**
 * Headers for upstream from the client's raw header list (name, value, name, value, ...):
 * hop-by-hop ones and those the Connection header names dropped, HTTP/2 pseudo-headers dropped,
 * Host set, the injected header replacing every client value of that name, and — when a
 * credential is injected — `Accept-Encoding: identity`, so the answer can be scrubbed.
 */
export function upstreamHeaders(
  raw: readonly string[],
  host: string,
  injection: Injection | null,
): HeaderMap {
  const lower: string[] = [];
  let named: Set<string> | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    lower.push(name);
    if (name === 'connection') {
      named ??= new Set<string>();
      for (const t of raw[i + 1]!.split(',')) named.add(t.trim().toLowerCase());
    }
  }
  const out: HeaderMap = {};
  let chunked = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = lower[i >> 1]!;
    const value = raw[i + 1]!;
    if (name === 'transfer-encoding') chunked = true;
    if (name.startsWith(':') || HOP_BY_HOP.has(name) || named?.has(name) === true) continue;
    if (injection?.header?.name === name) continue;
    if (injection !== null && name === 'accept-encoding') continue;
    const prev = out[name];
    out[name] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value];
  }
  out['host'] = host;
  // The client's body was chunked (HTTP/1.1 only; the parser refused any other coding): so is ours.
  if (chunked && out['content-length'] === undefined) out['transfer-encoding'] = 'chunked';
  if (injection?.header) out[injection.header.name] = injection.header.value;
  if (injection !== null) out['accept-encoding'] = 'identity';
  return out;
}

/** The target sent upstream: the client's, with the injected query parameter when there is one. */
export function upstreamTarget(target: string, injection: Injection | null): string {
  return injection?.query
    ? withQueryParam(target, injection.query.name, injection.query.value)
    : target;
}

/** Response headers for the client: hop-by-hop ones dropped, every value scrubbed. */
export function clientHeaders(raw: readonly string[], scrub: (v: string) => string): HeaderMap {
  const out: HeaderMap = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name)) continue;
    const value = scrub(raw[i + 1]!);
    const prev = out[name];
    out[name] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value];
  }
  return out;
}

/** How the request body goes upstream. */
export type RequestBodyFraming =
  | { readonly kind: 'none' }
  | { readonly kind: 'length'; readonly length: number }
  | { readonly kind: 'chunked' };

/**
 * The body's framing upstream, from the headers built for it: their Content-Length, else chunked
 * when the client's body was (HTTP/1.1) or may come without a length (`bodyMayFollow`: an HTTP/2
 * stream not ended with its headers) — then `transfer-encoding: chunked` is added to `headers`.
 */
export function requestBodyFraming(headers: HeaderMap, bodyMayFollow: boolean): RequestBodyFraming {
  const cl = headers['content-length'];
  if (cl !== undefined) {
    if (typeof cl !== 'string' || !isLength(cl)) {
      throw new HttpAnswer(400, { error: 'request Content-Length: not one decimal number' });
    }
    const length = Number(cl);
    return length === 0 ? { kind: 'none' } : { kind: 'length', length };
  }
  if (headers['transfer-encoding'] !== undefined) return { kind: 'chunked' };
  if (!bodyMayFollow) return { kind: 'none' };
  headers['transfer-encoding'] = 'chunked';
  return { kind: 'chunked' };
}

/**
 * The HTTP/1.1 request head for upstream (latin1 text, ending with the empty line). Everything in
 * it is checked once more here, whatever produced it: a method token, a target without spaces or
 * control characters, header names as tokens, values without CR, LF or NUL.
 */
export function requestHeadText(method: string, target: string, headers: HeaderMap): string {
  if (method.length > 32 || !isToken(method)) {
    throw new HttpAnswer(400, { error: 'request method: not a token' });
  }
  if (target === '' || hasBadTargetChar(target)) {
    throw new HttpAnswer(400, { error: 'request target: a space or control character' });
  }
  let head = `${method} ${target} HTTP/1.1\r\n`;
  for (const name in headers) {
    const v = headers[name]!;
    if (name.length > 256 || !isToken(name)) {
      throw new HttpAnswer(400, { error: `header name "${name.slice(0, 40)}": not a token` });
    }
    if (typeof v === 'string') head += headerLine(name, v);
    else for (const value of v) head += headerLine(name, value);
  }
  return head + '\r\n';
}

function headerLine(name: string, value: string): string {
  if (hasBadValueChar(value)) {
    throw new HttpAnswer(400, { error: `header ${name}: a control character in the value` });
  }
  return `${name}: ${value}\r\n`;
}
