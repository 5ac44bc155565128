// The head of a client's HTTP/1.1 request, parsed strictly (RFC 9112). The client is untrusted
// and the proxy forwards its requests over kept-alive upstream connections, so a head that a
// server could read differently from the proxy — the classic request-smuggling shapes — is
// refused with 400 rather than guessed at:
//   - Content-Length with Transfer-Encoding; more than one Content-Length (even equal ones); a
//     Content-Length that is not one decimal number;
//   - a Transfer-Encoding other than one `chunked` (and any on HTTP/1.0);
//   - a folded line (obs-fold), a bare CR or LF, whitespace before a header's colon, a header
//     name that is not a token, a control character in a value;
//   - a request line that is not `METHOD SP target SP HTTP/1.x` (a space or control character in
//     the target included);
//   - no Host, or more than one, on HTTP/1.1.
// Other versions are 505, an Expect other than 100-continue 417, too many header lines 431.
// Pure: client-reader.ts finds the head in the bytes and frames the body after it.
//
// Error messages quote only what the proxy itself allows through (a method or a version), never
// a header value: the client may have put anything there.
import { HttpAnswer } from './http-answer.ts';
import { hasBadValueChar, isLength, isToken, listHas, trimOws } from './http-syntax.ts';

/** Most header lines in one request head. */
export const MAX_REQUEST_HEADERS = 256;

/** How the request body after the head ends. */
export type ClientBodyFraming =
  | { readonly kind: 'none' }
  | { readonly kind: 'length'; readonly length: number }
  | { readonly kind: 'chunked' };

export interface ClientHead {
  readonly method: string;
  /** The request target as sent (origin-, absolute-, authority- or asterisk-form). */
  readonly target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  readonly minor: 0 | 1;
  /** Header names and values as received (values without surrounding whitespace), alternating. */
  readonly rawHeaders: readonly string[];
  readonly framing: ClientBodyFraming;
  /** Whether the client may send another request on the connection after this one. */
  readonly keepAlive: boolean;
  /** `Expect: 100-continue`: the client waits for 100 Continue before sending the body. */
  readonly expectContinue: boolean;
}

const OTHER_VERSION = /^HTTP\/[0-9](\.[0-9])?$/;

function bad(what: string): HttpAnswer {
  return new HttpAnswer(400, { error: `malformed HTTP request: ${what}` });
}

/** Parses the head in `text` (latin1, without the final empty line). Throws HttpAnswer. */
export function parseClientHead(text: string): ClientHead {
  const lines = text.split('\r\n');
  const { method, target, minor } = requestLine(lines[0]!);
  if (lines.length - 1 > MAX_REQUEST_HEADERS) {
    throw new HttpAnswer(431, { error: `more than ${MAX_REQUEST_HEADERS} header lines` });
  }
  const rawHeaders: string[] = [];
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  let hosts = 0;
  let close = false;
  let expectContinue = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    if (colon < 0 || !isToken(name)) throw bad(badLine(line, colon, i));
    const value = trimOws(line.slice(colon + 1));
    if (hasBadValueChar(value)) {
      throw bad(
        /[\r\n]/.test(value)
          ? 'a bare CR or LF in the head'
          : `header ${name.slice(0, 40)}: a control character in the value`,
      );
    }
    rawHeaders.push(name, value);
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'host') hosts++;
        break;
      case 6:
        if (name.toLowerCase() === 'expect') {
          if (value.toLowerCase() !== '100-continue') {
            throw new HttpAnswer(417, { error: 'only Expect: 100-continue is supported' });
          }
          expectContinue = true;
        }
        break;
      case 10:
        if (name.toLowerCase() === 'connection') {
          if (listHas(value, 'close')) close = true;
        }
        break;
      case 14:
        if (name.toLowerCase() === 'content-length') {
          if (contentLength !== undefined) throw bad('more than one Content-Length');
          if (!isLength(value)) throw bad('Content-Length is not one decimal number');
          contentLength = value;
        }
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') {
          if (transferEncoding !== undefined) throw bad('more than one Transfer-Encoding');
          transferEncoding = value;
        }
        break;
    }
  }
  if (minor === 1 && hosts !== 1) {
    throw bad(hosts === 0 ? 'no Host header' : 'more than one Host header');
  }
  if (hosts > 1) throw bad('more than one Host header');
  let framing: ClientBodyFraming = { kind: 'none' };
  if (transferEncoding !== undefined) {
    if (contentLength !== undefined) throw bad('both Content-Length and Transfer-Encoding');
    if (minor === 0) throw bad('Transfer-Encoding on HTTP/1.0');
    if (transferEncoding.toLowerCase() !== 'chunked') {
      throw bad('a Transfer-Encoding other than chunked alone');
    }
    framing = { kind: 'chunked' };
  } else if (contentLength !== undefined && contentLength !== '0') {
    framing = { kind: 'length', length: Number(contentLength) };
  }
  return {
    method,
    target,
    minor,
    rawHeaders,
    framing,
    // An HTTP/1.0 connection carries one request (its keep-alive extension is not offered).
    keepAlive: minor === 1 && !close,
    expectContinue: expectContinue && framing.kind !== 'none',
  };
}

/** `METHOD SP request-target SP HTTP/1.x`: a token, visible ASCII, 1.0 or 1.1. */
function requestLine(line: string): { method: string; target: string; minor: 0 | 1 } {
  const a = line.indexOf(' ');
  const b = a < 0 ? -1 : line.indexOf(' ', a + 1);
  const method = a < 0 ? '' : line.slice(0, a);
  const target = b < 0 ? '' : line.slice(a + 1, b);
  const version = b < 0 ? '' : line.slice(b + 1);
  const ok = method.length <= 32 && isToken(method) && target !== '' && isVisibleAscii(target);
  if (ok && (version === 'HTTP/1.1' || version === 'HTTP/1.0')) {
    return { method, target, minor: version === 'HTTP/1.1' ? 1 : 0 };
  }
  if (ok && OTHER_VERSION.test(version)) {
    throw new HttpAnswer(505, { error: 'HTTP version not supported: HTTP/1.1 or HTTP/1.0' });
  }
  throw bad(
    /[\r\n]/.test(line)
      ? 'a bare CR or LF in the head'
      : 'request line (expected METHOD SP target SP HTTP/1.1)',
  );
}

/** Whether `s` is only visible ASCII (0x21–0x7E): no space, control or non-ASCII byte. */
function isVisibleAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/** What is wrong with a header line that is not `token ":" value`. */
function badLine(line: string, colon: number, i: number): string {
  if (line.startsWith(' ') || line.startsWith('\t')) {
    return `header line ${i} starts with whitespace (obs-fold)`;
  }
  if (/[\r\n]/.test(colon < 0 ? line : line.slice(0, colon))) {
    return 'a bare CR or LF in the head';
  }
  if (colon > 0 && /[ \t]$/.test(line.slice(0, colon))) {
    return `whitespace before the colon in header line ${i}`;
  }
  return `header line ${i}: not a token name followed by ":"`;
}
