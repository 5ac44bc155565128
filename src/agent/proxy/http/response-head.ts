// The head of a server workload's HTTP/1.1 response, parsed strictly (RFC 9112), and how its body
// is framed. The server is trusted less than it seems: it may be misconfigured or compromised, and
// the proxy reuses the connection for the next request of the same client, so a head that could
// be read two ways (Content-Length with Transfer-Encoding, differing Content-Lengths, a transfer
// coding other than a lone `chunked`, folded or malformed lines) is refused rather than guessed
// at — the request fails with 502 and the connection is dropped. Pure: response-reader.ts feeds it.
//
// Error messages never quote the response: a server echoing the request could put the injected
// credential in a malformed line, and these messages reach the client and the log.

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
}

const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9][0-9]{2})(?: [\t\x20-\x7e\x80-\xff]*)?$/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BAD_VALUE_CHAR = /[^\t\x20-\x7e\x80-\xff]/;
const LENGTH = /^[0-9]{1,15}$/;

/**
 * Parses the head in `text` (latin1, without the final empty line). `headRequest`: the request
 * was HEAD, so no body follows whatever the head says.
 */
export function parseResponseHead(text: string, headRequest: boolean): ResponseHead {
  const lines = text.split('\r\n');
  const statusLine = lines[0]!;
  const m = STATUS_LINE.exec(statusLine);
  if (!m) {
    throw new UpstreamProtocolError('malformed status line');
  }
  if (lines.length - 1 > MAX_RESPONSE_HEADERS) {
    throw new UpstreamProtocolError(`more than ${MAX_RESPONSE_HEADERS} header lines`);
  }
  const status = Number(m[2]);
  const rawHeaders: string[] = [];
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  let close = m[1] === '0';
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    const name = colon < 0 ? '' : line.slice(0, colon);
    if (!TOKEN.test(name)) {
      // Also a folded line (starting with whitespace) and a bare LF or CR inside a line.
      throw new UpstreamProtocolError(`malformed header line ${i}`);
    }
    const value = line.slice(colon + 1).trim();
    if (BAD_VALUE_CHAR.test(value)) {
      throw new UpstreamProtocolError(`header line ${i}: a control character in the value`);
    }
    rawHeaders.push(name, value);
    const lower = name.toLowerCase();
    if (lower === 'content-length') {
      // Several values (in one line or several) must agree.
      for (const v of value.split(',')) {
        const t = v.trim();
        if (!LENGTH.test(t) || (contentLength !== undefined && contentLength !== t)) {
          throw new UpstreamProtocolError('invalid or differing Content-Length');
        }
        contentLength = t;
      }
    } else if (lower === 'transfer-encoding') {
      transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
    } else if (lower === 'connection') {
      if (value.split(',').some((t) => t.trim().toLowerCase() === 'close')) close = true;
    }
  }
  if (status === 101) {
    throw new UpstreamProtocolError('101 Switching Protocols to a request that asked for none');
  }
  const framing = bodyFraming(status, headRequest, contentLength, transferEncoding);
  return { status, rawHeaders, framing, keepAlive: !close && framing.kind !== 'close' };
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
