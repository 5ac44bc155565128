// The answer to one client request on an HTTP/1.1 connection (http1-connection.ts), written
// straight to the socket: the head when the first body bytes (or the end) come, so that a small
// complete answer leaves in one write. The framing is the proxy's own: the Content-Length given,
// else chunked (HTTP/1.1) or the connection's close (HTTP/1.0); no body at all for HEAD, 204 and
// 304. It has the part of node's ServerResponse the proxy uses (writeHead, write, end, destroy,
// headersSent, destroyed, writableFinished; 'drain', 'finish' and 'close'), so that the request
// path serves HTTP/1.1 and HTTP/2 (node's compatibility response) alike.
import { EventEmitter } from 'node:events';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** What a response needs of its connection. */
export interface ResponseConnection {
  readonly socket: Duplex;
  /** The response is complete (all of it handed to the socket) or was cut. */
  responseDone(res: Http1Response, cut: boolean): void;
  /** Whether the connection must close after this response (asked as its head is written). */
  closesAfter(res: Http1Response): boolean;
}

export interface ResponseContext {
  /** HTTP/1.x minor version of the request. */
  readonly minor: 0 | 1;
  /** A HEAD request: the head says what a GET would get, no body follows. */
  readonly head: boolean;
  /** Whether the connection stays open after this response (else `Connection: close`). */
  readonly keepAlive: boolean;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BAD_VALUE_CHAR = /[^\t\x20-\x7e\x80-\xff]/;
/** Bodies up to this are copied behind the head into one buffer; larger ones are written apart. */
const COALESCE_BYTES = 16 * 1024;
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);

export class Http1Response extends EventEmitter {
  headersSent = false;
  destroyed = false;
  writableEnded = false;
  writableFinished = false;
  statusCode = 200;
  readonly #conn: ResponseConnection;
  readonly #socket: Duplex;
  readonly #ctx: ResponseContext;
  /** The head, written with the first body bytes or the end. */
  #head: string | null = null;
  #chunked = false;
  #bodyless = false;
  /** The connection closes after this response. */
  #close: boolean;

  constructor(conn: ResponseConnection, ctx: ResponseContext) {
    super();
    this.#conn = conn;
    this.#socket = conn.socket;
    this.#ctx = ctx;
    this.#close = !ctx.keepAlive;
  }

  /** Whether the connection must close after this response. */
  get closesConnection(): boolean {
    return this.#close;
  }

  /** Asks for `Connection: close` (only before the head is written). */
  closeAfter(): void {
    if (!this.headersSent) this.#close = true;
  }

  writeHead(status: number, headers: Readonly<Record<string, string | string[]>>): this {
    if (this.headersSent) throw new Error('the response head was already written');
    if (!Number.isInteger(status) || status < 200 || status > 999) {
      throw new RangeError(`not a final HTTP status: ${status}`);
    }
    this.statusCode = status;
    this.#bodyless = this.#ctx.head || status === 204 || status === 304;
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    let length = false;
    for (const name in headers) {
      const v = headers[name]!;
      if (!TOKEN.test(name)) throw new TypeError(`response header name: not a token`);
      if (name.length === 14 && name.toLowerCase() === 'content-length') length = true;
      if (typeof v === 'string') head += line(name, v);
      else for (const one of v) head += line(name, one);
    }
    if (!this.#bodyless && !length) {
      if (this.#ctx.minor === 1) {
        this.#chunked = true;
        head += 'transfer-encoding: chunked\r\n';
      } else this.#close = true; // HTTP/1.0: the body ends with the connection
    }
    if (!this.#close && this.#conn.closesAfter(this)) this.#close = true;
    if (this.#close) head += 'connection: close\r\n';
    this.#head = head + '\r\n';
    this.headersSent = true;
    return this;
  }

  /** Writes body bytes; false when the socket's buffer is full (wait for 'drain'). */
  write(chunk: Buffer | string): boolean {
    if (this.writableEnded || this.destroyed) return false;
    if (!this.headersSent) this.writeHead(200, {});
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (b.length === 0 || this.#bodyless) {
      return this.#head === null ? true : this.#send(EMPTY, null);
    }
    return this.#send(b, null);
  }

  end(chunk?: Buffer | string): this {
    if (this.writableEnded || this.destroyed) return this;
    if (!this.headersSent) this.writeHead(200, {});
    this.writableEnded = true;
    const b = chunk === undefined ? EMPTY : typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.#send(this.#bodyless ? EMPTY : b, this.#chunked ? LAST_CHUNK : null);
    this.writableFinished = true;
    this.emit('finish');
    this.#conn.responseDone(this, false);
    this.emit('close');
    return this;
  }

  /** Cuts the response: the connection is closed (the client sees it incomplete). */
  destroy(): void {
    if (this.destroyed || this.writableFinished) return;
    this.destroyed = true;
    this.#conn.responseDone(this, true);
    this.emit('close');
  }

  /** The client connection went away before the response was complete. */
  gone(): void {
    if (this.destroyed || this.writableFinished) return;
    this.destroyed = true;
    this.emit('close');
  }

  /**
   * Writes the pending head (if any), `body` (framed when chunked) and `trailer`, in one write
   * when small.
   */
  #send(body: Buffer, trailer: Buffer | null): boolean {
    const head = this.#head;
    this.#head = null;
    const framed = this.#chunked && body.length > 0;
    const prefix = framed ? `${head ?? ''}${body.length.toString(16)}\r\n` : head;
    const suffix = framed ? (trailer === null ? '\r\n' : '\r\n0\r\n\r\n') : null;
    const tail = framed ? null : trailer;
    const socket = this.#socket;
    if (body.length <= COALESCE_BYTES) {
      const p = prefix === null ? 0 : Buffer.byteLength(prefix, 'latin1');
      const s = suffix === null ? 0 : suffix.length;
      const t = tail === null ? 0 : tail.length;
      if (p + s + t === 0) return body.length === 0 ? true : socket.write(body);
      const out = Buffer.allocUnsafe(p + body.length + s + t);
      if (prefix !== null) out.write(prefix, 0, 'latin1');
      body.copy(out, p);
      if (suffix !== null) out.write(suffix, p + body.length, 'latin1');
      if (tail !== null) tail.copy(out, p + body.length + s);
      return socket.write(out);
    }
    (socket as Socket).cork?.();
    if (prefix !== null) socket.write(prefix, 'latin1');
    let ok = socket.write(body);
    if (suffix !== null) ok = socket.write(suffix, 'latin1');
    if (tail !== null) ok = socket.write(tail);
    (socket as Socket).uncork?.();
    return ok;
  }
}

function line(name: string, value: string): string {
  // Values come checked from the upstream's head or from the proxy itself: checked once more,
  // since a CR or LF here would split the response.
  if (BAD_VALUE_CHAR.test(value))
    throw new TypeError(`response header ${name}: a control character`);
  return `${name}: ${value}\r\n`;
}
