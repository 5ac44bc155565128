// Reads a client's HTTP/1.1 requests from the bytes of its connection, one at a time: the head
// found within a bound (431 past it) and parsed strictly (client-head.ts), then the body delimited
// by its framing — Content-Length, or chunked with every chunk-size line, chunk end and trailer
// line checked (the chunks decoded; extensions and trailers dropped) — and handed on as slices of
// the received buffers. After a request's last byte the reader holds whatever follows (a
// pipelined request, or a CONNECT tunnel's first bytes) until the caller is done with the request
// and asks for the next one: requests never overlap. Pure: the caller does the I/O and answers a
// thrown HttpAnswer, then closes the connection.
import { ChunkedBody, hasBareLineBreak, type ChunkedRules } from './chunked-body.ts';
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

const HEAD_END = Buffer.from('\r\n\r\n');

type State =
  | 'head'
  | 'length'
  | 'chunked'
  /** The request is complete; bytes after it are held until next(). */
  | 'held';

function bad(what: string): HttpAnswer {
  return new HttpAnswer(400, { error: `malformed HTTP request: ${what}` });
}

const CHUNKED: ChunkedRules = { strict: true, fail: bad };

export class ClientReader {
  readonly #sink: ClientSink;
  readonly #maxHeadBytes: number;
  #state: State = 'head';
  /** Bytes of an unfinished head or chunked-body line. */
  #partial: Buffer | null = null;
  /** Bytes after the current request (state 'held'). */
  #held: Buffer | null = null;
  /** Body bytes still due (length framing). */
  #remaining = 0;
  /** The chunked body being read (state 'chunked'). */
  #chunked: ChunkedBody | null = null;

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
        case 'length': {
          const n = Math.min(this.#remaining, buf.length - at);
          this.#sink.body(at === 0 && n === buf.length ? buf : buf.subarray(at, at + n));
          at += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#finish();
          break;
        }
        case 'chunked': {
          const body = this.#chunked!;
          const next = body.read(buf, at, (piece) => this.#sink.body(piece));
          if (body.done) {
            this.#chunked = null;
            this.#finish();
          } else if (next < buf.length) this.#partial = buf.subarray(next);
          at = body.done ? next : buf.length;
          break;
        }
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
    } else if (f.kind === 'chunked') {
      this.#state = 'chunked';
      this.#chunked = new ChunkedBody(CHUNKED);
    }
    this.#sink.head(head);
    if (f.kind === 'none') this.#finish();
    return end + 4;
  }

  #finish(): void {
    this.#state = 'held';
    this.#sink.end();
  }
}
