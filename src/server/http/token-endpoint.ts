// POST <prefix>/token on the public listener's fast path: a well-formed form request is read
// (bounded) and handed to the token exchange straight from the node server, without Fastify's
// routing, hooks and parser (most of an exchange's cost otherwise); everything else goes through
// Fastify (public-server.ts), which answers the refusals.
import type http from 'node:http';
import { OAuthError, renderError, type TokenResponse } from '../sts/errors.ts';
import { MAX_FORM_BYTES, parseForm, type Form } from '../sts/form.ts';

/** The token exchange as the public listener calls it. */
export interface TokenHandler {
  handle(parseForm: () => Form, dpopHeaders?: readonly string[]): Promise<TokenResponse>;
}

const FORM_TYPE = 'application/x-www-form-urlencoded';
/** How much of a too-large token request body is read and dropped before the socket is closed. */
const MAX_DRAIN_BYTES = 1024 * 1024;

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
 * POST /token (form content type already checked): the body is read up to MAX_FORM_BYTES (a
 * larger one, announced or streamed, is refused with 400 invalid_request), then handed to the
 * exchange with the request's DPoP headers. Same responses as the Fastify routes.
 */
export function tokenFastPath(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  exchange: TokenHandler,
): void {
  // Too large: the rest of the body is read and dropped so that the client, having sent it all,
  // reads the answer — up to MAX_DRAIN_BYTES; beyond that the connection is closed unanswered.
  const tooLarge = (close: boolean) =>
    writeOAuth(
      res,
      renderError(new OAuthError('invalid_request', 'request body too large')),
      close,
    );
  const announced = Number(req.headers['content-length'] ?? 0);
  if (announced > MAX_DRAIN_BYTES) {
    tooLarge(true);
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let failed = false;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > MAX_DRAIN_BYTES) req.destroy();
    else if (size <= MAX_FORM_BYTES) chunks.push(c);
  });
  req.on('error', () => {
    failed = true;
    res.destroy();
  });
  req.on('end', () => {
    if (failed) return;
    if (size > MAX_FORM_BYTES) {
      tooLarge(false);
      return;
    }
    const body = Buffer.concat(chunks).toString('utf8');
    // Each DPoP header separately (RFC 9449 §4.3: more than one is refused by the exchange).
    const dpop = req.headersDistinct.dpop ?? [];
    exchange
      .handle(() => parseForm(body), dpop)
      .then(
        (r) => writeOAuth(res, r),
        () => writeOAuth(res, renderError(new Error('internal error'))),
      );
  });
}
