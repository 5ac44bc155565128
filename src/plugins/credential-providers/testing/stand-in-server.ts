// What the cloud stand-ins share: an HTTP server on 127.0.0.1 whose routes the stand-in supplies,
// bounded request bodies, misbehaviour on demand (garbage, oversized, slow, redirect answers) and
// the clouds' trust in Tessera: a subject JWT is accepted only when its signature verifies with a
// key from the JWKS named by the issuer's OIDC discovery document (fetched for every request, so
// a failing JWKS shows at once), with the expected `iss`, `aud`, a `sub` and an `exp` in the future.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';

export type Misbehaviour = 'none' | 'garbage' | 'oversized' | 'slow' | 'redirect';

export interface StandInRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

export interface StandInAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

export interface StandIn {
  readonly url: string;
  /** Requests received, in order. */
  readonly requests: StandInRequest[];
  misbehave: Misbehaviour;
  close(): Promise<void>;
}

/** `tls`: serve HTTPS with this key and certificate (SDKs that require https authorities). */
export async function startStandIn(
  handle: (req: StandInRequest) => Promise<StandInAnswer>,
  garbage: StandInAnswer,
  tls?: { readonly key: string; readonly cert: string },
): Promise<StandIn> {
  const requests: StandInRequest[] = [];
  const state = { misbehave: 'none' as Misbehaviour };
  const listener: http.RequestListener = (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
      if (body.length > 1_000_000) req.destroy();
    });
    req.on('end', () => {
      const r: StandInRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body,
      };
      requests.push(r);
      const send = (a: StandInAnswer) =>
        res.writeHead(a.status, { 'content-type': a.contentType }).end(a.body);
      switch (state.misbehave) {
        case 'garbage':
          return send(garbage);
        case 'oversized':
          return send({ ...garbage, status: 200, body: 'x'.repeat(100 * 1024) });
        case 'slow':
          setTimeout(() => send(garbage), 10_000).unref();
          return;
        case 'redirect':
          res.writeHead(307, { location: 'http://127.0.0.1:9/elsewhere' }).end();
          return;
        default:
          handle(r).then(send, (e: unknown) =>
            send({ status: 500, contentType: 'text/plain', body: String(e) }),
          );
      }
    });
  };
  const server = tls ? https.createServer(tls, listener) : http.createServer(listener);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    get misbehave() {
      return state.misbehave;
    },
    set misbehave(v: Misbehaviour) {
      state.misbehave = v;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Why a subject token was not accepted, in the cloud's terms. */
export type Rejection =
  | { readonly kind: 'jwks-unavailable'; readonly detail: string }
  | { readonly kind: 'expired'; readonly detail: string }
  | { readonly kind: 'audience'; readonly detail: string }
  | { readonly kind: 'invalid'; readonly detail: string };

export interface TrustedIssuer {
  readonly issuer: string;
  /** Accepted `aud` values. */
  readonly audiences: readonly string[];
  /** Accepted JWS algorithms (Google: RS256/ES256; Entra: RS256). */
  readonly algorithms: readonly string[];
}

/** Verifies a subject JWT as the cloud does; returns its claims or why it was refused. */
export async function verifySubjectToken(
  token: string,
  trust: TrustedIssuer,
): Promise<{ claims: JWTPayload } | { rejected: Rejection }> {
  let keys;
  try {
    const conf = (await (
      await fetch(`${trust.issuer}/.well-known/openid-configuration`)
    ).json()) as { jwks_uri?: string };
    const res = await fetch(String(conf.jwks_uri));
    if (!res.ok) throw new Error(`JWKS answered HTTP ${res.status}`);
    keys = createLocalJWKSet((await res.json()) as { keys: [] });
  } catch (e) {
    return { rejected: { kind: 'jwks-unavailable', detail: (e as Error).message } };
  }
  try {
    if (decodeProtectedHeader(token).kid === undefined) throw new Error('the token has no kid');
    const { payload } = await jwtVerify(token, keys, {
      issuer: trust.issuer,
      audience: [...trust.audiences],
      algorithms: [...trust.algorithms],
      requiredClaims: ['sub', 'exp', 'iat'],
    });
    return { claims: payload };
  } catch (e) {
    if (e instanceof errors.JWTExpired)
      return { rejected: { kind: 'expired', detail: 'the token has expired' } };
    if (e instanceof errors.JWTClaimValidationFailed && e.claim === 'aud')
      return { rejected: { kind: 'audience', detail: 'incorrect token audience' } };
    return { rejected: { kind: 'invalid', detail: (e as Error).message } };
  }
}

export const form = (body: string) => new URLSearchParams(body);

/** A loopback URL nothing listens on (a port just freed). */
export async function closedUrl(): Promise<string> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}
