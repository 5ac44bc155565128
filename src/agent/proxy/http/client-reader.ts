// Reads a client's HTTP/1.1 requests from the bytes of its connection, one at a time: the head
// found within a bound (431 past it) and parsed strictly (client-head.ts), then the body delimited
// by its framing — Content-Length, or chunked with every chunk-size line, chunk end and trailer
// line checked (the chunks decoded; extensions and trailers dropped) — and handed on as slices of
// the received buffers. After a request's last byte the reader holds whatever follows (a
// pipelined request, or a CONNECT tunnel's first bytes) until the caller is done with the request
// and asks for the next one: requests never overlap. Pure: the caller does the I/O and answers a
// thrown HttpAnswer, then closes the connection.
import { parseClientHead, type ClientHead } from './client-head.ts';
import { HttpAnswer } from './http-answer.ts';

export interface ClientSink {
  /** A request's head (its body, if any, follows). */
  head(head: ClientHead): void;
  /** Body bytes (decoded from chunked), a view of the received buffer. */
  body(chunk: Buffer): void;
  /** The request is complete (body included). */
  end(): void;
}

const MAX_CHUNK_LINE_BYTES = 1024;
const MAX_TRAILER_BYTES = 16 * 1024;
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED =
  '"(?:[\\t\\x20\\x21\\x23-\\x5b\\x5d-\\x7e\\x80-\\xff]|\\\\[\\t\\x20-\\x7e\\x80-\\xff])*"';
/** chunk-size [ chunk-ext ] (RFC 9112 §7.1.1): hex digits, then `;name[=value]` extensions. */
const CHUNK_LINE = new RegExp(
  `^([0-9a-fA-F]{1,13})((?:[ \\t]*;[ \\t]*${TOKEN}(?:[ \\t]*=[ \\t]*(?:${TOKEN}|${QUOTED}))?)*)$`,
);
const TRAILER_LINE = new RegExp(`^${TOKEN}:[\\t\\x20-\\x7e\\x80-\\xff]*$`);
const HEAD_END = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');

type State =
  | 'head'
  | 'length'
  | 'chunk-size'
  | 'chunk-data'
  | 'chunk-crlf'
  | 'trailers'
  /** The request is complete; bytes after it are held until next(). */
  | 'held';

function bad(what: string): HttpAnswer {
  return new HttpAnswer(400, { error: `malformed HTTP request: ${what}` });
}

export class ClientReader {
  readonly #sink: ClientSink;
  readonly #maxHeadBytes: number;
  #state: State = 'head';
  /** Bytes of an unfinished head, chunk-size line, chunk end or trailer section. */
  #partial: Buffer | null = null;
  /** Bytes after the current request (state 'held'). */
  #held: Buffer | null = null;
  /** Body bytes still due (length framing) or of the current chunk. */
  #remaining = 0;

  constructor(sink: ClientSink, maxHeadBytes: number) {
    this.#sink = sink;
    this.#maxHeadBytes = maxHeadBytes;
  }

  /** Whether the request so far has ended and bytes after it wait for next(). */
  get holding(): boolean {
    return this.#held !== null;
  }

  /** Whether no byte of a request has arrived since the last one ended. */
  get idle(): boolean {
    return (this.#state === 'head' && this.#partial === null) || this.#state === 'held';
  }

  /** Feeds received bytes; throws HttpAnswer (400, 431, 417, 505) on a malformed request. */
  push(chunk: Buffer): void {
    if (this.#state === 'held') {
      this.#held = this.#held === null ? chunk : Buffer.concat([this.#held, chunk]);
      return;
    }
    let buf = chunk;
    let seen = 0;
    if (this.#partial !== null) {
      buf = Buffer.concat([this.#partial, chunk]);
      seen = this.#partial.length;
      this.#partial = null;
    }
    this.#run(buf, 0, seen);
  }

  /** The current request is done with: reads the next one from the bytes held. */
  next(): void {
    if (this.#state !== 'held') return;
    this.#state = 'head';
    const held = this.#held;
    this.#held = null;
    if (held !== null) this.#run(held, 0, 0);
  }

  /** The bytes held after the request, taken away (a CONNECT tunnel's first bytes). */
  takeHeld(): Buffer {
    const held = this.#held ?? Buffer.alloc(0);
    this.#held = null;
    return held;
  }

  #run(buf: Buffer, from: number, seen: number): void {
    let at = from;
    while (at < buf.length) {
      switch (this.#state) {
        case 'head':
          at = this.#readHead(buf, at, seen);
          break;
        case 'length':
        case 'chunk-data': {
          const n = Math.min(this.#remaining, buf.length - at);
          this.#sink.body(at === 0 && n === buf.length ? buf : buf.subarray(at, at + n));
          at += n;
          this.#remaining -= n;
          if (this.#remaining === 0) {
            if (this.#state === 'length') this.#finish();
            else this.#state = 'chunk-crlf';
          }
          break;
        }
        case 'chunk-size':
          at = this.#readChunkSize(buf, at);
          break;
        case 'chunk-crlf':
          at = this.#readChunkCrlf(buf, at);
          break;
        case 'trailers':
          at = this.#readTrailers(buf, at);
          break;
        case 'held':
          this.#held = buf.subarray(at);
          at = buf.length;
          break;
      }
    }
  }

  /** `seen`: bytes of `buf` already searched (a held-back partial head). */
  #readHead(buf: Buffer, from: number, seen: number): number {
    let at = from;
    // Empty lines before a request line are ignored (RFC 9112 §2.2).
    while (buf[at] === 0x0d && buf[at + 1] === 0x0a) at += 2;
    if (at >= buf.length || (at === buf.length - 1 && buf[at] === 0x0d)) {
      if (at < buf.length) this.#partial = buf.subarray(at);
      return buf.length;
    }
    const end = buf.indexOf(HEAD_END, Math.max(at, seen - 3));
    if (end < 0 || end - at > this.#maxHeadBytes) {
      if (end >= 0 || buf.length - at > this.#maxHeadBytes) {
        throw new HttpAnswer(431, {
          error: `request head larger than ${this.#maxHeadBytes} bytes`,
        });
      }
      // An unfinished head: a bare LF or CR in it will never make a valid one.
      if (hasBareLineBreak(buf, Math.max(at, seen - 1))) throw bad('a bare CR or LF in the head');
      this.#partial = buf.subarray(at);
      return buf.length;
    }
    const head = parseClientHead(buf.toString('latin1', at, end));
    const f = head.framing;
    if (f.kind === 'length') {
      this.#state = 'length';
      this.#remaining = f.length;
    } else if (f.kind === 'chunked') this.#state = 'chunk-size';
    this.#sink.head(head);
    if (f.kind === 'none') this.#finish();
    return end + 4;
  }

  #readChunkSize(buf: Buffer, at: number): number {
    const end = buf.indexOf(CRLF, at);
    if (end < 0 || end - at > MAX_CHUNK_LINE_BYTES) {
      if (buf.length - at > MAX_CHUNK_LINE_BYTES) {
        throw bad(`chunk-size line longer than ${MAX_CHUNK_LINE_BYTES} bytes`);
      }
      if (hasBareLineBreak(buf, at)) throw bad('a bare CR or LF in a chunk-size line');
      this.#partial = buf.subarray(at);
      return buf.length;
    }
    const m = CHUNK_LINE.exec(buf.toString('latin1', at, end));
    if (!m) throw bad('chunk-size line');
    const size = parseInt(m[1]!, 16);
    if (size === 0) this.#state = 'trailers';
    else {
      this.#state = 'chunk-data';
      this.#remaining = size;
    }
    return end + 2;
  }

  #readChunkCrlf(buf: Buffer, at: number): number {
    if (buf[at] !== 0x0d || (buf.length - at >= 2 && buf[at + 1] !== 0x0a)) {
      throw bad('chunk data not followed by CRLF');
    }
    if (buf.length - at < 2) {
      this.#partial = buf.subarray(at);
      return buf.length;
    }
    this.#state = 'chunk-size';
    return at + 2;
  }

  /** Trailer fields (checked, dropped) and the empty line ending the message. */
  #readTrailers(buf: Buffer, at: number): number {
    if (buf.length - at >= 2 && buf[at] === 0x0d && buf[at + 1] === 0x0a) {
      this.#finish();
      return at + 2;
    }
    const end = buf.indexOf(HEAD_END, at);
    if (end >= 0 && end - at <= MAX_TRAILER_BYTES) {
      const lines = buf.toString('latin1', at, end).split('\r\n');
      for (let i = 0; i < lines.length; i++) {
        if (TRAILER_LINE.test(lines[i]!)) continue;
        throw bad(
          /[\r\n]/.test(lines[i]!)
            ? 'a bare CR or LF in the trailers'
            : `trailer line ${i + 1}: not a token name followed by ":"`,
        );
      }
      this.#finish();
      return end + 4;
    }
    if (buf.length - at > MAX_TRAILER_BYTES) {
      throw bad(`trailers larger than ${MAX_TRAILER_BYTES} bytes`);
    }
    if (buf[at] === 0x0d && buf.length - at >= 2) throw bad('a bare CR in the trailers');
    if (hasBareLineBreak(buf, at)) throw bad('a bare CR or LF in the trailers');
    this.#partial = buf.subarray(at);
    return buf.length;
  }

  #finish(): void {
    this.#state = 'held';
    this.#sink.end();
  }
}

/**
 * Whether buf[from..] has an LF not after a CR, or a CR not before an LF (a CR as the very last
 * byte may still be followed by one).
 */
function hasBareLineBreak(buf: Buffer, from: number): boolean {
  for (let i = buf.indexOf(0x0a, from); i >= 0; i = buf.indexOf(0x0a, i + 1)) {
    if (i === 0 || buf[i - 1] !== 0x0d) return true;
  }
  for (let i = buf.indexOf(0x0d, from); i >= 0; i = buf.indexOf(0x0d, i + 1)) {
    if (i < buf.length - 1 && buf[i + 1] !== 0x0a) return true;
  }
  return false;
}
