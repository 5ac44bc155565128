// The head of a server workload's HTTP/1.1 response, parsed strictly (RFC 9112), and how its body
// is framed. The server is trusted less than it seems: it may be misconfigured or compromised, and
// the proxy reuses the connection for the next request of the same client, so a head that could
// be read two ways (Content-Length with Transfer-Encoding, differing Content-Lengths, a transfer
// coding other than a lone `chunked`, folded or malformed lines) is refused rather than guessed
// at — the request fails with 502 and the connection is dropped. Pure: response-reader.ts feeds it.
//
// Error messages never quote the response: a server echoing the request could put the injected
// credential in a malformed line, and these messages reach the client and the log.

import { hasBadValueChar, isLength, isToken, listHas, trimOws } from './http-syntax.ts';

/** Largest response head accepted from a server workload (status line and headers). */
export const MAX_RESPONSE_HEAD_BYTES = 32 * 1024;
/** Most header lines in one response head. */
export const MAX_RESPONSE_HEADERS = 256;

/** A response the proxy cannot relay faithfully: 502, and the upstream connection dropped. */
export class UpstreamProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UpstreamProtocolError';
  }
}

/** How the body after the head ends. */
export type BodyFraming =
  | { readonly kind: 'none' }
  | { readonly kind: 'length'; readonly length: number }
  | { readonly kind: 'chunked' }
  /** Until the server closes the connection (no Content-Length, no chunked). */
  | { readonly kind: 'close' };

export interface ResponseHead {
  readonly status: number;
  /** Header names and values as received, alternating (like node's rawHeaders). */
  readonly rawHeaders: readonly string[];
  readonly framing: BodyFraming;
  /** Whether the connection may carry another request after this response. */
  readonly keepAlive: boolean;
  /** The Content-Encoding, lowercased ("identity" when none). */
  readonly contentEncoding: string;
}

/** `HTTP/1.x NNN[ reason]`: the version's minor digit and the status, or null. */
function statusLine(line: string): { minor: string; status: number } | null {
  if (line.length < 12 || !line.startsWith('HTTP/1.') || line.charCodeAt(8) !== 0x20) return null;
  const minor = line[7]!;
  if (minor !== '0' && minor !== '1') return null;
  const d0 = line.charCodeAt(9) - 0x30;
  const d1 = line.charCodeAt(10) - 0x30;
  const d2 = line.charCodeAt(11) - 0x30;
  if (d0 < 1 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return null;
  // The reason phrase: after one space, HTAB / SP / VCHAR / obs-text.
  if (line.length > 12 && (line.charCodeAt(12) !== 0x20 || hasBadValueChar(line.slice(13)))) {
    return null;
  }
  return { minor, status: d0 * 100 + d1 * 10 + d2 };
}

/**
 * Parses the head in `text` (latin1, without the final empty line). `headRequest`: the request
 * was HEAD, so no body follows whatever the head says.
 */
export function parseResponseHead(text: string, headRequest: boolean): ResponseHead {
  const lines = text.split('\r\n');
  const m = statusLine(lines[0]!);
  if (!m) {
    throw new UpstreamProtocolError('malformed status line');
  }
  if (lines.length - 1 > MAX_RESPONSE_HEADERS) {
    throw new UpstreamProtocolError(`more than ${MAX_RESPONSE_HEADERS} header lines`);
  }
  const status = m.status;
  const rawHeaders: string[] = [];
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  let close = m.minor === '0';
  let contentEncoding = 'identity';
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    const name = colon < 0 ? '' : line.slice(0, colon);
    if (!isToken(name)) {
      // Also a folded line (starting with whitespace) and a bare LF or CR inside a line.
      throw new UpstreamProtocolError(`malformed header line ${i}`);
    }
    const value = trimOws(line.slice(colon + 1));
    if (hasBadValueChar(value)) {
      throw new UpstreamProtocolError(`header line ${i}: a control character in the value`);
    }
    rawHeaders.push(name, value);
    // Only names of these lengths matter here: most lines are not lowercased at all.
    const n = name.length;
    if (n !== 14 && n !== 17 && n !== 10 && n !== 16) continue;
    const lower = name.toLowerCase();
    if (lower === 'content-length') {
      // Several values (in one line or several) must agree.
      for (const v of value.includes(',') ? value.split(',') : [value]) {
        const t = trimOws(v);
        if (!isLength(t) || (contentLength !== undefined && contentLength !== t)) {
          throw new UpstreamProtocolError('invalid or differing Content-Length');
        }
        contentLength = t;
      }
    } else if (lower === 'transfer-encoding') {
      transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
    } else if (lower === 'connection') {
      if (listHas(value, 'close')) close = true;
    } else if (lower === 'content-encoding') {
      contentEncoding = contentEncoding === 'identity' ? value.toLowerCase() : 'several';
    }
  }
  if (status === 101) {
    throw new UpstreamProtocolError('101 Switching Protocols to a request that asked for none');
  }
  const framing = bodyFraming(status, headRequest, contentLength, transferEncoding);
  return {
    status,
    rawHeaders,
    framing,
    keepAlive: !close && framing.kind !== 'close',
    contentEncoding,
  };
}

function bodyFraming(
  status: number,
  headRequest: boolean,
  contentLength: string | undefined,
  transferEncoding: string | undefined,
): BodyFraming {
  if (headRequest || status < 200 || status === 204 || status === 304) return { kind: 'none' };
  if (transferEncoding !== undefined) {
    if (contentLength !== undefined) {
      throw new UpstreamProtocolError('both Content-Length and Transfer-Encoding');
    }
    if (transferEncoding.toLowerCase() !== 'chunked') {
      throw new UpstreamProtocolError('a Transfer-Encoding other than chunked alone');
    }
    return { kind: 'chunked' };
  }
  if (contentLength !== undefined) {
    const length = Number(contentLength);
    return length === 0 ? { kind: 'none' } : { kind: 'length', length };
  }
  return { kind: 'close' };
}
