// POST <prefix>/token on the public listener's fast path: a well-formed form request is read
// (bounded) and handed to the token exchange straight from the node server, without Fastify's
// routing, hooks and parser (most of an exchange's cost otherwise); everything else goes through
// Fastify (public-server.ts), which answers the refusals.
import type http from 'node:http';
import type net from 'node:net';
import { renderError, type TokenResponse } from '../sts/errors.ts';
import { bodyTooLarge, MAX_FORM_BYTES, parseForm, type Form } from '../sts/form.ts';

/** The token exchange as the public listener calls it. */
export interface TokenHandler {
  handle(parseForm: () => Form, dpopHeaders?: readonly string[]): Promise<TokenResponse>;
}

const FORM_TYPE = 'application/x-www-form-urlencoded';
/**
 * After refusing a body, how much of the rest is dropped before closing: until the client closes,
 * LINGER_BYTES more, LINGER_IDLE_MS without a byte, or LINGER_MS in all (nginx's lingering close:
 * 5 s and 30 s). The bytes bound is well above what socket buffers hold, so that a client that
 * wrote that much before reading still finds the answer.
 */
const LINGER_BYTES = 16 * 1024 * 1024;
const LINGER_IDLE_MS = 5000;
const LINGER_MS = 30_000;
const lingering = new WeakSet<net.Socket>();

/**
 * Closes the connection of a refused, unread body without losing the answer. Closing a socket
 * with unread bytes resets it, and a client still sending then gets a write error and may never
 * read the answer already sent. So, once node has written a `connection: close` answer (it calls
 * destroySoon() then), we half-close — the client sees the answer and the end of the stream —
 * and let what still arrives be dropped, within the bounds above, then close (lingering close,
 * as nginx and Apache do).
 */
export function lingerOnClose(req: http.IncomingMessage): void {
  const socket = req.socket;
  lingering.add(socket);
  // The body's bytes still reach the request stream (node's parser reads the socket itself).
  let dropped = 0;
  req.removeAllListeners('data');
  req.on('data', (c: Buffer) => {
    dropped += c.length;
    if (dropped > LINGER_BYTES) socket.destroy();
  });
  socket.destroySoon = function destroySoon(this: net.Socket) {
    this.end();
    this.setTimeout(LINGER_IDLE_MS, () => this.destroy());
    const cap = setTimeout(() => this.destroy(), LINGER_MS);
    cap.unref();
    this.once('close', () => clearTimeout(cap));
    this.resume();
  };
}

/**
 * Whether the connection is closing after a refused body: a request pipelined behind that body
 * is never served (its answer could not be sent anyway).
 */
export function isLingering(socket: net.Socket): boolean {
  return lingering.has(socket);
}

export function isTokenRequest(req: http.IncomingMessage, tokenPath: string): boolean {
  if (req.method !== 'POST') return false;
  const url = req.url ?? '';
  const q = url.indexOf('?');
  if ((q < 0 ? url : url.slice(0, q)) !== tokenPath) return false;
  const type = req.headers['content-type'] ?? '';
  const semi = type.indexOf(';');
  return (semi < 0 ? type : type.slice(0, semi)).trim().toLowerCase() === FORM_TYPE;
}

export function writeOAuth(res: http.ServerResponse, r: TokenResponse, close = false): void {
  const body = JSON.stringify(r.body);
  res.writeHead(r.status, {
    ...r.headers,
    'cache-control': 'no-store',
    pragma: 'no-cache',
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(body);
}

/**
 * POST /token (form content type already checked): the body is read up to MAX_FORM_BYTES, then
 * handed to the exchange with the request's DPoP headers. Same responses as the Fastify routes.
 * A larger body — announced by its content-length, or streamed (chunked) past the limit — is
 * answered at once with 400 invalid_request, and the connection is closed once the answer is
 * written (lingerOnClose): the rest is never parsed.
 */
export function tokenFastPath(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  exchange: TokenHandler,
): void {
  const tooLarge = () => {
    req.removeListener('data', onData);
    req.removeListener('end', onEnd);
    lingerOnClose(req); // what still arrives is dropped, within its bounds
    writeOAuth(res, renderError(bodyTooLarge()), true);
  };
  const chunks: Buffer[] = [];
  let size = 0;
  const onData = (c: Buffer) => {
    size += c.length;
    if (size > MAX_FORM_BYTES) tooLarge();
    else chunks.push(c);
  };
  const onEnd = () => {
    const body = Buffer.concat(chunks).toString('utf8');
    // Each DPoP header separately (RFC 9449 §4.3: more than one is refused by the exchange).
    const dpop = req.headersDistinct.dpop ?? [];
    exchange
      .handle(() => parseForm(body), dpop)
      .then(
        (r) => writeOAuth(res, r),
        () => writeOAuth(res, renderError(new Error('internal error'))),
      );
  };
  // A reset by the client: nothing to answer.
  req.on('error', () => res.destroy());
  if (Number(req.headers['content-length'] ?? 0) > MAX_FORM_BYTES) {
    tooLarge();
    return;
  }
  req.on('data', onData);
  req.on('end', onEnd);
}
