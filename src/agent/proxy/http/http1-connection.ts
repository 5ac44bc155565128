// HTTP/1.1 served on a raw client connection (a local listener's, the explicit proxy's, or inside
// a terminated CONNECT tunnel), with the proxy's own strict reader (client-reader.ts) instead of
// node's HTTP server: one request at a time (a pipelined request waits, unread, until the answer
// before it is complete), each handed on as an Http1Request (its body a Readable) and an
// Http1Response. Requests and their bodies are refused as client-head.ts and client-reader.ts
// say — 400, 417, 431, 505 with `Connection: close` — and nothing of a refused request is
// forwarded. A head must arrive whole within the head timeout of the connection's start or of
// the previous answer (408 and closed). `Expect: 100-continue` is answered when the body is first
// read, that is once the request is allowed; a final answer before it closes the connection.
// CONNECT goes to `onConnect` with the socket (the explicit proxy), or is refused.
import { STATUS_CODES } from 'node:http';
import { Readable, type Duplex } from 'node:stream';
import type { ProxyLog } from '../proxy-connection.ts';
import type { ClientHead } from './client-head.ts';
import { ClientReader, type ClientSink } from './client-reader.ts';
import { answerHead, HttpAnswer } from './http-answer.ts';
import { Http1Response, type ResponseConnection } from './http1-response.ts';

export interface Http1Options {
  /** Largest request head (request line and headers); larger is 431. */
  readonly maxHeadBytes: number;
  /** Time for a request head to arrive completely (and idle time between requests). */
  readonly headTimeoutMs: number;
}

/** A client's request: its head, and its body as a stream. */
export class Http1Request extends Readable {
  readonly method: string;
  /** The request target (the explicit proxy rewrites an absolute-form one to its path). */
  url: string;
  readonly rawHeaders: readonly string[];
  readonly httpVersion: string;
  readonly #bodiless: boolean;
  readonly #onRead: () => void;

  constructor(head: ClientHead, onRead: () => void) {
    super();
    this.method = head.method;
    this.url = head.target;
    this.rawHeaders = head.rawHeaders;
    this.httpVersion = head.minor === 1 ? '1.1' : '1.0';
    this.#bodiless = head.framing.kind === 'none';
    this.#onRead = onRead;
  }

  /** Whether the request has no body (Content-Length 0 or none, not chunked). */
  get bodiless(): boolean {
    return this.#bodiless;
  }

  override _read(): void {
    // No body: ended when first read (not before, which would cost a tick when nobody reads).
    if (this.#bodiless) this.push(null);
    else this.#onRead();
  }
}

/**
 * Lets a request body flow to nowhere (a refused request's, or none): for a request without one
 * nothing needs doing — resuming its stream would only schedule its end.
 */
export function discardBody(body: Readable): void {
  if (body instanceof Http1Request && body.bodiless) return;
  body.resume();
}

export type Http1RequestHandler = (req: Http1Request, res: Http1Response) => void;
/** A CONNECT: its authority-form target, the socket (now the handler's) and the bytes after it. */
export type ConnectHandler = (target: string, socket: Duplex, head: Buffer) => void;

type Client = Duplex & { destroy(): void };

/** Serves HTTP/1.1 on `client` until it closes; with `onConnect`, CONNECT requests go there. */
export function serveHttp1(
  client: Client,
  o: Http1Options,
  log: ProxyLog,
  onRequest: Http1RequestHandler,
  onConnect?: ConnectHandler,
): void {
  new Http1Connection(client, o, log, onRequest, onConnect ?? null);
}

const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';

interface Current {
  readonly head: ClientHead;
  readonly req: Http1Request;
  readonly res: Http1Response;
  bodyDone: boolean;
  responseDone: boolean;
  continueSent: boolean;
}

class Http1Connection implements ClientSink, ResponseConnection {
  readonly socket: Client;
  readonly #log: ProxyLog;
  readonly #onRequest: Http1RequestHandler;
  readonly #onConnect: ConnectHandler | null;
  readonly #reader: ClientReader;
  readonly #headTimeoutMs: number;
  #timer: NodeJS.Timeout;
  /**
   * When the connection began or the last answer ended: the next head is due within the head
   * timeout of it. Checked when the timer fires, rather than the timer reset per request.
   */
  #idleSince = performance.now();
  #current: Current | null = null;
  /** Inside reader.push(): moving on to the next request waits until it returns. */
  #pushing = false;
  #advanceAfterPush = false;
  /** The body stream is full: reading waits for its consumer. */
  #bodyFull = false;
  #paused = false;
  /** A CONNECT's target, handed over when the reader returns. */
  #connect: string | null = null;
  #closed = false;

  constructor(
    client: Client,
    o: Http1Options,
    log: ProxyLog,
    onRequest: Http1RequestHandler,
    onConnect: ConnectHandler | null,
  ) {
    this.socket = client;
    this.#log = log;
    this.#onRequest = onRequest;
    this.#onConnect = onConnect;
    this.#reader = new ClientReader(this, o.maxHeadBytes);
    this.#headTimeoutMs = o.headTimeoutMs;
    this.#timer = setTimeout(this.#onTimeout, o.headTimeoutMs);
    client.on('data', this.#onData);
    client.on('drain', this.#onDrain);
    client.once('close', this.#onClose);
    client.resume();
  }

  // --- the socket

  readonly #onData = (chunk: Buffer): void => {
    if (this.#closed) return;
    this.#pushing = true;
    try {
      this.#reader.push(chunk);
    } catch (e) {
      this.#pushing = false;
      return this.#refuse(e);
    }
    this.#pushing = false;
    if (this.#connect !== null) return this.#handOver(this.#connect);
    if (this.#advanceAfterPush) this.#advance();
    else this.#flow();
  };

  readonly #onDrain = (): void => {
    this.#current?.res.emit('drain');
  };

  readonly #onTimeout = (): void => {
    if (this.#closed) return;
    // A request in flight is the upstream's to time out; the head after it is due in time.
    const left =
      this.#current !== null
        ? this.#headTimeoutMs
        : this.#headTimeoutMs - (performance.now() - this.#idleSince);
    if (left >= 1) {
      this.#timer = setTimeout(this.#onTimeout, left);
      return;
    }
    this.#log.info({}, 'a request head did not arrive in time');
    this.#closeWith(new HttpAnswer(408, { error: 'request head not received in time' }));
  };

  readonly #onClose = (): void => {
    this.#closed = true;
    clearTimeout(this.#timer);
    const c = this.#current;
    if (c === null) return;
    if (!c.bodyDone) c.req.destroy();
    c.res.gone();
  };

  // --- ClientSink: what the reader finds

  head(head: ClientHead): void {
    if (head.method === 'CONNECT') {
      if (this.#onConnect === null) {
        throw new HttpAnswer(405, {
          error: 'CONNECT is served by the explicit proxy, not on a local listener',
        });
      }
      if (head.framing.kind !== 'none')
        throw new HttpAnswer(400, { error: 'a CONNECT with a body' });
      this.#connect = head.target;
      return;
    }
    const current: Current = {
      head,
      req: new Http1Request(head, () => this.#bodyRead(current)),
      res: new Http1Response(this, {
        minor: head.minor,
        head: head.method === 'HEAD',
        keepAlive: head.keepAlive,
      }),
      bodyDone: head.framing.kind === 'none',
      responseDone: false,
      continueSent: false,
    };
    this.#current = current;
    this.#onRequest(current.req, current.res);
  }

  body(chunk: Buffer): void {
    const c = this.#current;
    if (c === null || c.req.destroyed) return;
    if (!c.req.push(chunk)) this.#bodyFull = true;
  }

  end(): void {
    if (this.#connect !== null) return;
    const c = this.#current;
    if (c === null) return;
    c.bodyDone = true;
    if (c.head.framing.kind !== 'none' && !c.req.destroyed) c.req.push(null);
    if (c.responseDone) this.#advance();
  }

  // --- ResponseConnection: what the response reports

  responseDone(res: Http1Response, cut: boolean): void {
    const c = this.#current;
    if (c === null || c.res !== res) return;
    c.responseDone = true;
    if (cut || res.closesConnection) return this.#finishAndClose(cut);
    if (!c.bodyDone) {
      // Answered before the whole body came (a refusal): the rest is read and dropped.
      if (c.head.expectContinue && !c.continueSent) return this.#finishAndClose(false);
      c.req.resume();
      this.#bodyFull = false;
      return this.#flow();
    }
    this.#advance();
  }

  closesAfter(res: Http1Response): boolean {
    const c = this.#current;
    // Answered before the client was told to send its body: it may send it or not, so the
    // connection cannot carry another request.
    return c !== null && c.res === res && c.head.expectContinue && !c.continueSent && !c.bodyDone;
  }

  /** The response is done and so is the request: on to the next one. */
  #advance(): void {
    if (this.#pushing) {
      this.#advanceAfterPush = true;
      return;
    }
    // A loop, not recursion: held requests answered at once (refused) follow one another here.
    do {
      this.#advanceAfterPush = false;
      this.#current = null;
      this.#bodyFull = false;
      this.#idleSince = performance.now();
      if (this.#closed) return;
      this.#pushing = true;
      try {
        this.#reader.next();
      } catch (e) {
        this.#pushing = false;
        return this.#refuse(e);
      }
      this.#pushing = false;
      if (this.#connect !== null) return this.#handOver(this.#connect);
    } while (this.#advanceAfterPush);
    this.#flow();
  }

  /** The body's consumer wants more: the socket is read again; 100 Continue when expected. */
  #bodyRead(c: Current): void {
    if (c.head.expectContinue && !c.continueSent && !c.res.headersSent && !this.#closed) {
      c.continueSent = true;
      this.socket.write(CONTINUE, 'latin1');
    }
    if (this.#bodyFull) {
      this.#bodyFull = false;
      this.#flow();
    }
  }

  /** Reading stops while the body's consumer is full or a finished request's successor waits. */
  #flow(): void {
    const pause = this.#bodyFull || this.#reader.holding;
    if (pause === this.#paused || this.#closed) return;
    this.#paused = pause;
    if (pause) this.socket.pause();
    else this.socket.resume();
  }

  /** A malformed request (head or body): answered when nothing is being answered, then closed. */
  #refuse(e: unknown): void {
    const a =
      e instanceof HttpAnswer
        ? e
        : new HttpAnswer(400, { error: `malformed HTTP request: ${String(e)}` });
    this.#log.info({ status: a.status, error: a.message }, 'refused a malformed HTTP request');
    const c = this.#current;
    if (c === null) return this.#closeWith(a);
    // Mid-body: the request fails; its answer, if not begun, is this refusal.
    if (c.req.listenerCount('error') > 0) c.req.destroy(a);
    else c.req.destroy();
    if (c.responseDone) return this.#finishAndClose(false); // answered, the body was being dropped
    if (!c.res.headersSent) {
      c.res.closeAfter();
      const { text, headers } = answerHead(a);
      c.res.writeHead(a.status, headers);
      c.res.end(text);
    } else c.res.destroy();
  }

  /** Writes the proxy's answer with `Connection: close` and closes (no request in flight). */
  #closeWith(a: HttpAnswer): void {
    this.#stopReading();
    writeRaw(this.socket, a);
  }

  #finishAndClose(cut: boolean): void {
    this.#stopReading();
    if (cut) this.socket.destroy();
    else {
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 1000).unref();
    }
  }

  #stopReading(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.socket.removeListener('data', this.#onData);
    this.socket.removeListener('drain', this.#onDrain);
  }

  /** CONNECT: the socket and the bytes after the request go to the explicit proxy. */
  #handOver(target: string): void {
    this.#connect = null;
    const rest = this.#reader.takeHeld();
    this.#stopReading();
    this.socket.removeListener('close', this.#onClose);
    this.socket.pause();
    this.#onConnect!(target, this.socket, rest);
  }
}

/** Writes an answer on a raw HTTP/1.1 connection and closes it (refusals, timeouts). */
export function writeRaw(socket: Duplex, a: HttpAnswer): void {
  if (!socket.writable) return void socket.destroy();
  const { text, headers } = answerHead(a);
  let head = '';
  for (const [k, v] of Object.entries({ ...headers, connection: 'close' }))
    head += `${k}: ${v}\r\n`;
  socket.end(`HTTP/1.1 ${a.status} ${STATUS_CODES[a.status] ?? ''}\r\n${head}\r\n${text}`);
  setTimeout(() => socket.destroy(), 1000).unref();
}
