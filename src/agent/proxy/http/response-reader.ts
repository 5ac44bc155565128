// Reads one HTTP/1.1 response from the bytes of an upstream connection, as they arrive: interim
// (1xx) heads skipped, the final head parsed (response-head.ts), the body delimited by its framing
// — Content-Length, chunked (decoded; chunk extensions and trailers dropped) or the connection's
// close — and handed on as slices of the received buffers, never copied. Every part is bounded:
// the head, each chunk-size line, the trailers, the number of interim responses. Pure: the caller
// does the I/O and turns a thrown UpstreamProtocolError into 502 and a dropped connection.
import { ChunkedBody, type ChunkedRules } from './chunked-body.ts';
import {
  MAX_RESPONSE_HEAD_BYTES,
  parseResponseHead,
  UpstreamProtocolError,
  type ResponseHead,
} from './response-head.ts';

export interface ResponseSink {
  /** The final (non-1xx) head. */
  head(head: ResponseHead): void;
  /** Body bytes (decoded from chunked), a view of the received buffer. */
  data(chunk: Buffer): void;
  /** The response is complete. */
  end(): void;
}

const MAX_INTERIM_RESPONSES = 16;
const HEAD_END = Buffer.from('\r\n\r\n');
const CHUNKED: ChunkedRules = {
  strict: false,
  fail: (what) => new UpstreamProtocolError(`malformed chunked body: ${what}`),
};

type State = 'head' | 'length' | 'chunked' | 'close' | 'done';

export class ResponseReader {
  readonly #sink: ResponseSink;
  readonly #headRequest: boolean;
  #state: State = 'head';
  /** Bytes of an unfinished head or chunked-body line. */
  #partial: Buffer | null = null;
  /** Body bytes still due (length framing). */
  #remaining = 0;
  /** The chunked body being read (state 'chunked'). */
  #chunked: ChunkedBody | null = null;
  #interim = 0;
  /** Bytes received after the response ended: the connection cannot be reused. */
  #extra = false;

  constructor(sink: ResponseSink, headRequest: boolean) {
    this.#sink = sink;
    this.#headRequest = headRequest;
  }

  /** Whether the response is complete. */
  get done(): boolean {
    return this.#state === 'done';
  }

  /** Whether the server sent bytes past the end of its response. */
  get extra(): boolean {
    return this.#extra;
  }

  /** Whether any byte of the response arrived. */
  get started(): boolean {
    return this.#state !== 'head' || this.#partial !== null || this.#interim > 0;
  }

  /** Feeds received bytes; throws UpstreamProtocolError on a malformed or oversized response. */
  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.#partial !== null) {
      buf = Buffer.concat([this.#partial, chunk]);
      this.#partial = null;
    }
    let at = 0;
    while (at < buf.length) {
      switch (this.#state) {
        case 'head':
          at = this.#readHead(buf, at, buf.length - chunk.length);
          break;
        case 'length': {
          const n = Math.min(this.#remaining, buf.length - at);
          this.#sink.data(buf.subarray(at, at + n));
          at += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#finish();
          break;
        }
        case 'chunked': {
          const body = this.#chunked!;
          const next = body.read(buf, at, (piece) => this.#sink.data(piece));
          if (body.done) {
            this.#chunked = null;
            this.#finish();
          } else if (next < buf.length) this.#partial = buf.subarray(next);
          at = body.done ? next : buf.length;
          break;
        }
        case 'close':
          this.#sink.data(at === 0 ? buf : buf.subarray(at));
          at = buf.length;
          break;
        case 'done':
          this.#extra = true;
          at = buf.length;
          break;
      }
    }
  }

  /** The server closed the connection: the end of a close-delimited body, else an error. */
  eof(): void {
    if (this.#state === 'close') return this.#finish();
    if (this.#state === 'done') return;
    throw new UpstreamProtocolError(
      this.#state === 'head'
        ? 'the connection closed before a response'
        : 'the connection closed in the middle of the response body',
    );
  }

  /** `seen`: bytes of `buf` already searched (a held-back partial head). */
  #readHead(buf: Buffer, at: number, seen: number): number {
    const end = buf.indexOf(HEAD_END, Math.max(at, seen - 3));
    if (end < 0 || end - at > MAX_RESPONSE_HEAD_BYTES) {
      if (buf.length - at > MAX_RESPONSE_HEAD_BYTES) {
        throw new UpstreamProtocolError(
          `response head larger than ${MAX_RESPONSE_HEAD_BYTES} bytes`,
        );
      }
      this.#partial = buf.subarray(at);
      return buf.length;
    }
    const head = parseResponseHead(buf.toString('latin1', at, end), this.#headRequest);
    if (head.status < 200) {
      if (++this.#interim > MAX_INTERIM_RESPONSES) {
        throw new UpstreamProtocolError(`more than ${MAX_INTERIM_RESPONSES} interim responses`);
      }
      return end + 4;
    }
    this.#sink.head(head);
    const f = head.framing;
    if (f.kind === 'none') this.#finish();
    else if (f.kind === 'length') {
      this.#state = 'length';
      this.#remaining = f.length;
    } else if (f.kind === 'chunked') {
      this.#state = 'chunked';
      this.#chunked = new ChunkedBody(CHUNKED);
    } else this.#state = 'close';
    return end + 4;
  }

  #finish(): void {
    this.#state = 'done';
    this.#sink.end();
  }
}
