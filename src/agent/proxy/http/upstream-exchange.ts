// One request and its response over a pooled upstream connection (HTTP/1.1 to the upstream,
// whatever the client spoke): the head written in one piece, the client's body streamed after it
// with its length enforced, the response read strictly (response-reader.ts) and streamed back with
// the credential masked (scrub.ts). A response complete in one read goes back in one write.
//
// The connection returns to the pool only after a clean exchange: the whole request body sent,
// the whole response received, nothing after it, no `Connection: close`. Anything else — a
// malformed response, a client gone mid-way, a timeout — closes it, so a half-finished message
// never becomes the start of the next one. A bodiless GET, HEAD or OPTIONS whose reused
// connection closed before any response byte (the server timed it out meanwhile) is sent once
// more on a new connection.
import { isTesseraError } from '../../../core/errors.ts';
import type { ProxyLog } from '../proxy-connection.ts';
import type { Readable } from 'node:stream';
import { answer, HttpAnswer, writeHead, type ClientResponse } from './http-answer.ts';
import { discardBody } from './http1-connection.ts';
import { clientHeaders, type RequestBodyFraming } from './request-head.ts';
import { UpstreamProtocolError, type ResponseHead } from './response-head.ts';
import { ResponseReader, type ResponseSink } from './response-reader.ts';
import type { BodyScrub, Scrubber } from './scrub.ts';
import type { UpstreamConnection, UpstreamPool, UpstreamUser } from './upstream-pool.ts';

export interface Exchange {
  readonly pool: UpstreamPool;
  /** host:port, for messages. */
  readonly where: string;
  readonly method: string;
  /** The request head (requestHeadText). */
  readonly head: string;
  readonly body: RequestBodyFraming;
  /** Where the body comes from: the client's request, or a stream made of it (a re-signer's). */
  readonly bodySource: Readable;
  readonly scrubber: Scrubber;
  readonly log: ProxyLog;
}

/** Runs the exchange; settles when the response is complete or failed. Never throws. */
export function exchange(res: ClientResponse, x: Exchange): Promise<void> {
  // The client went away, or its request was refused (a malformed body), while the request was
  // being decided: nothing to send.
  if (res.destroyed || res.writableEnded) return Promise.resolve();
  return new Promise<void>((resolve) => new Run(res, x, resolve).start(false));
}

const CRLF = '\r\n';
/** Methods sent once more when a reused connection dropped them unanswered (RFC 9110 §9.2.1). */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** A content coding named in an error message; anything else from the server is not quoted. */
const KNOWN_CODING = /^(gzip|x-gzip|deflate|br|zstd|compress|x-compress)$/;
const LAST_CHUNK = '0\r\n\r\n';

class Run implements UpstreamUser, ResponseSink {
  readonly #req: Readable;
  readonly #res: ClientResponse;
  readonly #x: Exchange;
  readonly #settle: () => void;
  readonly #scrub: BodyScrub | null;
  #conn: UpstreamConnection | null = null;
  #reader: ResponseReader;
  #head: ResponseHead | null = null;
  /** Body pieces from the read being handled. */
  #out: Buffer[] = [];
  #bodySent = false;
  #settled = false;
  #retried = false;
  /** The listener streaming the client's body upstream, while it does. */
  #onBodyData: ((chunk: Buffer) => void) | null = null;

  constructor(res: ClientResponse, x: Exchange, settle: () => void) {
    this.#req = x.bodySource;
    this.#res = res;
    this.#x = x;
    this.#settle = settle;
    this.#scrub = x.scrubber.empty ? null : x.scrubber.body();
    this.#reader = new ResponseReader(this, x.method === 'HEAD');
    res.once('close', () => {
      if (!res.writableFinished) this.#fail(null);
    });
  }

  start(fresh: boolean): void {
    const idle = fresh ? null : this.#x.pool.take();
    if (idle) return this.#send(idle);
    this.#x.pool.acquire(fresh).then(
      (c) => this.#send(c),
      (e: unknown) => {
        const err = e as Error;
        const a = new HttpAnswer(502, {
          error: `could not reach ${this.#x.where}: ${reason(err)}`,
        });
        this.#x.log.warn({ err: err.message }, a.message);
        this.#fail(a);
      },
    );
  }

  #send(c: UpstreamConnection): void {
    if (this.#settled) return this.#x.pool.release(c, true);
    this.#conn = c;
    c.attach(this);
    const socket = c.socket;
    socket.write(this.#x.head, 'latin1');
    if (this.#retried) return; // the body (none) was handled on the first attempt
    const body = this.#x.body;
    if (body.kind === 'none') {
      this.#bodySent = true;
      discardBody(this.#req);
      return;
    }
    let sent = 0;
    const req = this.#req;
    const onData = (chunk: Buffer) => {
      sent += chunk.length;
      if (body.kind === 'length' && sent > body.length) {
        return this.#fail(
          new HttpAnswer(400, { error: 'request body longer than its Content-Length' }),
        );
      }
      const s = this.#conn?.socket;
      if (!s) return;
      let ok: boolean;
      if (body.kind === 'chunked') {
        s.cork();
        s.write(`${chunk.length.toString(16)}${CRLF}`);
        s.write(chunk);
        ok = s.write(CRLF);
        s.uncork();
      } else {
        ok = s.write(chunk);
        if (sent === body.length) this.#bodySent = true;
      }
      if (!ok) {
        req.pause();
        s.once('drain', () => req.resume());
      }
    };
    this.#onBodyData = onData;
    req.on('data', onData);
    req.once('end', () => {
      req.removeListener('data', onData);
      if (this.#settled) return;
      if (body.kind === 'length' && sent !== body.length) {
        return this.#fail(
          new HttpAnswer(400, { error: 'request body shorter than its Content-Length' }),
        );
      }
      if (body.kind === 'chunked') this.#conn?.socket.write(LAST_CHUNK);
      this.#bodySent = true;
    });
    // A body found malformed on the way (the client's chunked framing, a re-signed aws-chunked
    // body): 400 naming it, when the answer has not begun; else the response is cut.
    req.once('error', (e: Error) =>
      this.#fail(
        e instanceof HttpAnswer
          ? e
          : isTesseraError(e) && e.code === 'invalid_argument'
            ? new HttpAnswer(400, { error: e.message })
            : null,
      ),
    );
  }

  // --- UpstreamUser: what the connection reports

  received(chunk: Buffer): void {
    try {
      this.#reader.push(chunk);
    } catch (e) {
      return this.#fail(this.#protocolAnswer(e));
    }
    this.#flush();
  }

  timeout(): void {
    this.#fail(new HttpAnswer(504, { error: `${this.#x.where} did not answer in time` }));
  }

  gone(error: Error | undefined): void {
    if (this.#settled) return;
    const c = this.#conn;
    try {
      this.#reader.eof();
    } catch (e) {
      const retry =
        c !== null &&
        c.served > 0 &&
        !this.#reader.started &&
        this.#x.body.kind === 'none' &&
        SAFE_METHODS.has(this.#x.method) &&
        !this.#retried;
      if (retry) {
        // A kept-alive connection the server closed as we reused it: one new attempt.
        this.#retried = true;
        this.#conn = null;
        return this.start(true);
      }
      const detail = error ? `${(e as Error).message} (${reason(error)})` : (e as Error).message;
      return this.#fail(this.#protocolAnswer(new UpstreamProtocolError(detail)));
    }
    this.#flush();
  }

  // --- ResponseSink: what the reader finds

  head(head: ResponseHead): void {
    if (this.#scrub !== null) {
      const encoding = head.contentEncoding;
      if (encoding !== 'identity') {
        throw new HttpAnswer(502, {
          error: `${this.#x.where} answered with Content-Encoding ${KNOWN_CODING.test(encoding) ? encoding : '(unrecognised)'} though identity was asked: the proxy cannot check it for the credential`,
        });
      }
    }
    this.#head = head;
    const scrubber = this.#x.scrubber;
    const headers = clientHeaders(head.rawHeaders, (v) => scrubber.text(v));
    writeHead(this.#res, head.status, headers);
  }

  data(chunk: Buffer): void {
    const b = this.#scrub ? this.#scrub.push(chunk) : chunk;
    if (b.length > 0) this.#out.push(b);
  }

  end(): void {
    const rest = this.#scrub?.end();
    if (rest && rest.length > 0) this.#out.push(rest);
  }

  // --- the client side

  /** Writes what the last read produced; the last piece of a complete response with end(). */
  #flush(): void {
    const out = this.#out;
    const res = this.#res;
    const done = this.#reader.done;
    const last = done ? out.pop() : undefined;
    const w = res as { write(b: Buffer): boolean };
    let ok = true;
    for (const b of out) ok = w.write(b) && ok;
    out.length = 0;
    if (done) {
      if (last) res.end(last);
      else res.end();
      return this.#complete();
    }
    if (!ok && this.#conn) {
      const s = this.#conn.socket;
      s.pause();
      res.once('drain', () => s.resume());
    }
  }

  /** The response is complete: the connection goes back when the exchange was clean. */
  #complete(): void {
    if (this.#settled) return;
    this.#settled = true;
    // A response before the whole request body was sent leaves the connection mid-message.
    if (!this.#bodySent) this.#stopBody();
    const c = this.#conn;
    this.#conn = null;
    if (c) {
      const h = this.#head;
      this.#x.pool.release(c, this.#bodySent && h !== null && h.keepAlive && !this.#reader.extra);
    }
    this.#settle();
  }

  #stopBody(): void {
    if (this.#onBodyData) this.#req.removeListener('data', this.#onBodyData);
    discardBody(this.#req);
  }

  /** Ends the exchange: the answer when nothing was sent yet, else the client response cut. */
  #fail(a: HttpAnswer | null): void {
    if (this.#settled) return;
    this.#settled = true;
    const c = this.#conn;
    this.#conn = null;
    if (c) this.#x.pool.release(c, false);
    this.#stopBody();
    if (a) answer(this.#res, a);
    else this.#res.destroy();
    this.#settle();
  }

  #protocolAnswer(e: unknown): HttpAnswer {
    if (e instanceof HttpAnswer) return e;
    const msg = e instanceof Error ? e.message : String(e);
    const a = new HttpAnswer(502, { error: `${this.#x.where}: ${msg}` });
    this.#x.log.warn({ where: this.#x.where }, a.message);
    return a;
  }
}

function reason(e: Error): string {
  const code = (e as { code?: string }).code;
  return code ? `${code}: ${e.message}` : e.message;
}
