// Bearer JWT-SVID authentication for Node HTTP servers, as a connect/express-style middleware
// `(req, res, next)`. A verified caller is attached as `req.spiffe` (and findable with
// spiffeOf(req)); otherwise the request is answered here: 401 with a RFC 6750 challenge
// (error="invalid_token" for a bad token, no error code when there is none), or 403 when the
// verifier's authorizer refuses the subject. Other failures (e.g. no bundles yet) go to next(err).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidArgumentError, PermissionDeniedError } from '../../core/errors.ts';
import type { SpiffeId } from '../../core/spiffe-id.ts';
import type { JwtSvidVerifier } from './jwt-verifier.ts';

export interface SpiffeCaller {
  readonly id: SpiffeId;
  readonly spiffeId: string;
  readonly claims: Readonly<Record<string, unknown>>;
  /** Epoch ms from exp. */
  readonly expiresAt: number;
}

export type SpiffeRequest = IncomingMessage & { spiffe?: SpiffeCaller };
export type Next = (err?: unknown) => void;

export interface JwtMiddlewareOptions {
  /** Told about every refused request (the reason is never sent to the caller). */
  readonly onReject?: (error: Error, req: IncomingMessage) => void;
  /** Realm in the challenge (default "spiffe"). */
  readonly realm?: string;
}

const callers = new WeakMap<IncomingMessage, SpiffeCaller>();

/** The verified caller of a request that went through the middleware. */
export function spiffeOf(req: IncomingMessage): SpiffeCaller | undefined {
  return callers.get(req);
}

/** The token of `Authorization: Bearer <token>`, or undefined when there is no bearer token. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(h);
  return m ? m[1] : undefined;
}

export function jwtSvidMiddleware(
  verifier: JwtSvidVerifier,
  o: JwtMiddlewareOptions = {},
): (req: IncomingMessage, res: ServerResponse, next: Next) => void {
  const realm = o.realm ?? 'spiffe';
  return (req, res, next) => {
    const token = bearerToken(req);
    if (token === undefined) {
      o.onReject?.(new Error('no bearer token'), req);
      return void refuse(res, 401, `Bearer realm="${realm}"`);
    }
    verifier.verify(token).then(
      (v) => {
        const caller: SpiffeCaller = {
          id: v.id,
          spiffeId: v.spiffeId,
          claims: v.claims,
          expiresAt: v.expiresAt,
        };
        callers.set(req, caller);
        (req as SpiffeRequest).spiffe = caller;
        next();
      },
      (e: unknown) => {
        o.onReject?.(e as Error, req);
        if (e instanceof PermissionDeniedError) {
          return refuse(res, 403, `Bearer realm="${realm}", error="insufficient_scope"`);
        }
        if (e instanceof InvalidArgumentError) {
          return refuse(res, 401, `Bearer realm="${realm}", error="invalid_token"`);
        }
        next(e);
      },
    );
  };
}

function refuse(res: ServerResponse, status: 401 | 403, challenge: string): void {
  if (res.headersSent) return void res.destroy();
  const body = JSON.stringify({ error: status === 401 ? 'unauthorized' : 'forbidden' });
  res.writeHead(status, {
    'www-authenticate': challenge,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}
