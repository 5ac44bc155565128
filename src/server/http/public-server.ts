// The public listener: OIDC discovery (`<issuer>/.well-known/openid-configuration`), the JWKS of
// the JWT authorities (`<issuer>/keys`) and the SPIFFE bundle endpoint (`<issuer>/bundle`,
// https_web profile) and, when `sts` is configured, the RFC 8693 token endpoint (`<issuer>/token`),
// RFC 7662 introspection (`<issuer>/introspect`) and RFC 7009 revocation (`<issuer>/revoke`), all
// POST form only. TLS from operator-supplied files, or plain HTTP behind a TLS proxy. Every other
// route is a bodiless GET; anything else is refused before a body is read.
import http from 'node:http';
import type http2 from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Bundle } from '../../core/bundle.ts';
import { bundleToJwks, bundleToSpiffeJson } from '../../crypto/bundle-format.ts';
import type { RateLimiter } from './rate-limit.ts';
import { DPOP_ALGS } from '../sts/dpop.ts';
import { OAuthError, renderError, type TokenResponse } from '../sts/errors.ts';
import { bodyTooLarge, MAX_FORM_BYTES, parseForm, type Form } from '../sts/form.ts';
import { routesOf, type HttpRoute, type RouteId } from './routes.ts';
import {
  isLingering,
  isTokenRequest,
  lingerOnClose,
  tokenFastPath,
  writeOAuth,
  type TokenHandler,
} from './token-endpoint.ts';

/** Longest Cache-Control max-age of the public documents, seconds. */
const MAX_AGE_CAP = 300;

export interface PublicServerOptions {
  host: string;
  port: number;
  /** The OIDC issuer; its path (if any) prefixes every route. */
  issuer: string;
  /** PEM certificate chain and key (read by the composition root); plain HTTP when absent. */
  tls?: { readonly cert: string; readonly key: string } | undefined;
  bundle(): Bundle;
  /** Serves POST <prefix>/token when set (the token exchange). */
  tokenExchange?: TokenHandler | undefined;
  /** Serves POST <prefix>/introspect and <prefix>/revoke when set. */
  introspection?:
    | {
        introspect(
          authorization: string | undefined,
          parseForm: () => Form,
        ): Promise<TokenResponse>;
        revoke(authorization: string | undefined, parseForm: () => Form): Promise<TokenResponse>;
      }
    | undefined;
  /** Per client address, on the POST endpoints (token, introspect, revoke). */
  rateLimit?: RateLimiter | undefined;
  /** Called for every request refused by the rate limit (a metric; such requests are not audited). */
  onRateLimited?: () => void;
}

export interface PublicServer {
  readonly port: number;
  /** What the listener registered (method, path), HEAD included: checked against the table. */
  readonly registered: ReadonlyArray<{ method: string; url: string }>;
  close(): Promise<void>;
}

/** The endpoint URLs advertised in the discovery document, all derived from the issuer. */
export function oidcUrls(issuer: string): {
  prefix: string;
  discovery: string;
  jwks: string;
  token: string;
  introspection: string;
  revocation: string;
} {
  const base = issuer.replace(/\/+$/, '');
  return {
    prefix: new URL(issuer).pathname.replace(/\/+$/, ''),
    discovery: `${base}/.well-known/openid-configuration`,
    jwks: `${base}/keys`,
    token: `${base}/token`,
    introspection: `${base}/introspect`,
    revocation: `${base}/revoke`,
  };
}

export function discoveryDocument(issuer: string, bundle: Bundle): Record<string, unknown> {
  const u = oidcUrls(issuer);
  const algs = [
    ...new Set(bundleToJwks(bundle).keys.flatMap((k) => (k.alg ? [k.alg] : []))),
  ].sort();
  return {
    issuer,
    jwks_uri: u.jwks,
    response_types_supported: ['id_token'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: algs,
    // Served by the token-exchange work; advertised here already.
    token_endpoint: u.token,
    introspection_endpoint: u.introspection,
    revocation_endpoint: u.revocation,
    // RFC 9449 §5.1: the token endpoint accepts DPoP proofs signed with these.
    dpop_signing_alg_values_supported: [...DPOP_ALGS],
  };
}

export function cacheControl(bundle: Bundle): string {
  return `public, max-age=${Math.max(1, Math.min(MAX_AGE_CAP, bundle.refreshHint))}`;
}

/** The SPIFFE bundle endpoint body (`GET /bundle`). */
export function bundleBody(bundle: Bundle): string {
  return JSON.stringify(bundleToSpiffeJson(bundle));
}

type H2Handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;

/**
 * Wraps the API listener's handler: `/bundle` (the https_spiffe bundle endpoint) is answered here,
 * everything else goes to the Connect adapter. No client certificate is needed for it.
 */
export function withBundleEndpoint(next: H2Handler, bundle: () => Bundle): H2Handler {
  return (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/bundle') {
      next(req, res);
      return;
    }
    try {
      const hasBody =
        Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET', 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'method not allowed' }));
      } else if (hasBody) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'request body not accepted' }));
      } else {
        const b = bundle();
        const body = bundleBody(b);
        res.writeHead(200, {
          'content-type': 'application/json',
          'cache-control': cacheControl(b),
        });
        if (req.method === 'HEAD') res.end();
        else res.end(body);
      }
    } catch {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'internal error' }));
    }
    // The request stream is not read: a body sent anyway is discarded with the stream.
    req.resume();
  };
}

type Introspection = NonNullable<PublicServerOptions['introspection']>;

const sendOAuth = (reply: FastifyReply, r: TokenResponse) =>
  reply
    .headers(r.headers ?? {})
    .code(r.status)
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
    .header('content-type', 'application/json')
    .send(JSON.stringify(r.body));

const bodyOf = (req: { body: unknown }) => (typeof req.body === 'string' ? req.body : '');

type RouteHandler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/** The handler of each row of the table this listener serves; a row without one is not served. */
function handlers(o: PublicServerOptions): Partial<Record<RouteId, RouteHandler>> {
  const document = (reply: FastifyReply) => {
    const b = o.bundle();
    reply.header('cache-control', cacheControl(b));
    return b;
  };
  const exchange = o.tokenExchange;
  const introspection: Introspection | undefined = o.introspection;
  return {
    discovery: async (_req, reply) => discoveryDocument(o.issuer, document(reply)),
    jwks: async (_req, reply) => {
      const b = document(reply);
      reply.header('content-type', 'application/json');
      return bundleToJwks(b, { use: 'sig' });
    },
    bundle: async (_req, reply) => {
      const b = document(reply);
      reply.header('content-type', 'application/json');
      return reply.send(bundleBody(b));
    },
    // Registered so that the hooks and error handler apply to /token (wrong methods and content
    // types are answered by them); a well-formed POST never gets here (tokenFastPath).
    ...(exchange && {
      token: async (req, reply) => {
        const body = bodyOf(req);
        const dpop = req.raw.headersDistinct.dpop ?? [];
        return sendOAuth(reply, await exchange.handle(() => parseForm(body), dpop));
      },
    }),
    ...(introspection && {
      introspect: async (req, reply) => {
        const body = bodyOf(req);
        return sendOAuth(
          reply,
          await introspection.introspect(req.headers.authorization, () => parseForm(body)),
        );
      },
      revoke: async (req, reply) => {
        const body = bodyOf(req);
        return sendOAuth(
          reply,
          await introspection.revoke(req.headers.authorization, () => parseForm(body)),
        );
      },
    }),
  };
}

/** A POST form endpoint over its client's rate: 429 with RFC 8628's `slow_down`, body unread. */
function overLimit(
  o: PublicServerOptions,
  formPaths: ReadonlySet<string>,
): (req: http.IncomingMessage, res: http.ServerResponse) => boolean {
  const limiter = o.rateLimit;
  return (req, res) => {
    if (!limiter?.enabled) return false;
    const url = req.url ?? '';
    const q = url.indexOf('?');
    if (!formPaths.has(q < 0 ? url : url.slice(0, q))) return false;
    const key = req.socket.remoteAddress ?? '';
    if (limiter.take(key)) return false;
    o.onRateLimited?.();
    writeOAuth(
      res,
      {
        status: 429,
        headers: { 'retry-after': String(limiter.retryAfterSeconds(key)) },
        body: { error: 'slow_down', error_description: 'too many requests from this address' },
      },
      true,
    );
    return true;
  };
}

/**
 * Runs before any body is parsed: wrong methods and bodies are refused unread, by what the
 * route's row declares (`form` routes: POST with the form type; `none` routes: bodiless GET).
 */
function refuseEarly(byPath: ReadonlyMap<string, HttpRoute>) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const route = byPath.get(req.url.split('?')[0] ?? '');
    // Unknown paths fall through to the not-found handler (bodies there are capped by bodyLimit).
    if (!route) return undefined;
    if (route.body === 'form') {
      if (req.method !== 'POST')
        return reply
          .code(405)
          .header('allow', 'POST')
          .header('connection', 'close')
          .send({ error: 'method not allowed' });
      const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
      if (type !== 'application/x-www-form-urlencoded')
        return sendOAuth(
          reply.header('connection', 'close'),
          renderError(
            new OAuthError(
              'invalid_request',
              'content type must be application/x-www-form-urlencoded',
            ),
          ),
        );
      return undefined;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      // The body (if any) is never read, so the connection is not reused.
      return reply
        .code(405)
        .header('allow', 'GET')
        .header('connection', 'close')
        .send({ error: 'method not allowed' });
    }
    if (Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding']) {
      return reply
        .code(400)
        .header('connection', 'close')
        .send({ error: 'request body not accepted' });
    }
    return undefined;
  };
}

function errorHandler(formPaths: ReadonlySet<string>) {
  return async (err: { statusCode?: number }, req: FastifyRequest, reply: FastifyReply) => {
    if (formPaths.has(req.url.split('?')[0] ?? '')) {
      // Over the limit, announced or streamed (Fastify stops reading the moment a chunked body
      // passes it): answered as the token fast path does, and the connection closed after the
      // answer, so that node does not read the rest of the body to keep it alive.
      if (err.statusCode === 413) {
        lingerOnClose(req.raw);
        return sendOAuth(reply.header('connection', 'close'), renderError(bodyTooLarge()));
      }
      return sendOAuth(
        reply,
        renderError(
          err.statusCode && err.statusCode < 500
            ? new OAuthError('invalid_request', 'malformed request')
            : err,
        ),
      );
    }
    const code =
      err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    return reply.code(code).send({ error: code === 500 ? 'internal error' : 'bad request' });
  };
}

export async function startPublicServer(o: PublicServerOptions): Promise<PublicServer> {
  const { prefix } = oidcUrls(o.issuer);
  const handlerOf = handlers(o);
  // The rows served here: every GET document, the POST form endpoints when configured.
  const served = routesOf('public').flatMap((route) => {
    const handler = handlerOf[route.id as RouteId];
    return handler ? [{ route, url: `${prefix}${route.path}`, handler }] : [];
  });
  const byPath = new Map(served.map((s) => [s.url, s.route]));
  const formPaths = new Set(served.filter((s) => s.route.body === 'form').map((s) => s.url));
  const tokenPath = `${prefix}/token`;
  const exchange = o.tokenExchange;
  const limited = overLimit(o, formPaths);
  const tls = o.tls ? { cert: o.tls.cert, key: o.tls.key, minVersion: 'TLSv1.2' as const } : null;
  // POST <prefix>/token with the form content type — the hot path — is served straight from the
  // node server (tokenFastPath); everything else, including every refusal of a wrong method or
  // content type on /token, goes through Fastify below.
  const serverFactory = (handler: http.RequestListener) => {
    const h: http.RequestListener = (req, res) => {
      if (isLingering(req.socket)) {
        req.socket.destroy();
        return;
      }
      if (limited(req, res)) return;
      if (exchange && isTokenRequest(req, tokenPath)) tokenFastPath(req, res, exchange);
      else handler(req, res);
    };
    const server = tls ? createHttpsServer(tls, h) : http.createServer(h);
    // Fastify's keep-alive default (it sets its timeouts only on servers it creates itself); the
    // request and header timeouts stay at node's defaults (300 s, 60 s).
    server.keepAliveTimeout = 72_000;
    return server;
  };
  const app: FastifyInstance = Fastify({
    logger: false,
    bodyLimit: 1024,
    exposeHeadRoutes: true,
    serverFactory,
  }) as unknown as FastifyInstance;
  const registered: Array<{ method: string; url: string }> = [];
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) registered.push({ method, url: r.url });
  });
  app.addHook('onRequest', refuseEarly(byPath));
  app.setNotFoundHandler((_req, reply) => {
    void reply.code(404).send({ error: 'not found' });
  });
  app.setErrorHandler(errorHandler(formPaths));
  if (formPaths.size > 0) {
    // Only the form type is parsed (the onRequest hook refused the others), as a raw string.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: MAX_FORM_BYTES },
      (_req, body, done) => {
        done(null, body);
      },
    );
  }
  for (const { route, url, handler } of served) {
    app.route({
      method: route.method,
      url,
      ...(route.body === 'form' ? { bodyLimit: MAX_FORM_BYTES } : {}),
      handler,
    });
  }

  await app.listen({ host: o.host, port: o.port });
  const addr = app.server.address();
  return {
    port: addr && typeof addr === 'object' ? addr.port : o.port,
    registered,
    close: () => app.close(),
  };
}
