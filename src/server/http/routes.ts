// The plain-HTTP routes of the server, declared: what each serves, on which listener, and who may
// call it. No route is unauthenticated by accident: `access` says so here, and a test checks that
// every route the listeners register has a row (and every row is registered).
//
// `public`: anyone, no credential (documents meant for relying parties, operator probes).
// `request`: anyone may call; the request carries what authorizes it (a subject token and its
//   trust policy, an optional DPoP proof) and the handler checks it.
// `client`: the caller authenticates as a registered client (a bearer JWT-SVID of an
//   introspection client) and the handler checks it.

export type RouteAccess = 'public' | 'request' | 'client';

export interface HttpRoute {
  readonly id: string;
  readonly listener: 'public' | 'health';
  readonly method: 'GET' | 'POST';
  /** Under the issuer's path on the public listener. */
  readonly path: string;
  /** `none`: a request body is refused unread; `form`: application/x-www-form-urlencoded only. */
  readonly body: 'none' | 'form';
  readonly access: RouteAccess;
  /** Served only when the token exchange (`sts`) is on. */
  readonly sts?: true;
}

export const httpRoutes = [
  {
    id: 'discovery',
    listener: 'public',
    method: 'GET',
    path: '/.well-known/openid-configuration',
    body: 'none',
    access: 'public',
  },
  { id: 'jwks', listener: 'public', method: 'GET', path: '/keys', body: 'none', access: 'public' },
  {
    id: 'bundle',
    listener: 'public',
    method: 'GET',
    path: '/bundle',
    body: 'none',
    access: 'public',
  },
  {
    id: 'token',
    listener: 'public',
    method: 'POST',
    path: '/token',
    body: 'form',
    access: 'request',
    sts: true,
  },
  {
    id: 'introspect',
    listener: 'public',
    method: 'POST',
    path: '/introspect',
    body: 'form',
    access: 'client',
    sts: true,
  },
  {
    id: 'revoke',
    listener: 'public',
    method: 'POST',
    path: '/revoke',
    body: 'form',
    access: 'client',
    sts: true,
  },
  {
    id: 'healthz',
    listener: 'health',
    method: 'GET',
    path: '/healthz',
    body: 'none',
    access: 'public',
  },
  {
    id: 'readyz',
    listener: 'health',
    method: 'GET',
    path: '/readyz',
    body: 'none',
    access: 'public',
  },
  {
    id: 'metrics',
    listener: 'health',
    method: 'GET',
    path: '/metrics',
    body: 'none',
    access: 'public',
  },
] as const satisfies readonly HttpRoute[];

export type RouteId = (typeof httpRoutes)[number]['id'];

/** The rows of one listener. */
export function routesOf(listener: HttpRoute['listener']): readonly HttpRoute[] {
  return httpRoutes.filter((r) => r.listener === listener);
}
