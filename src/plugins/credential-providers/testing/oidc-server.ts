// A real OAuth 2.0 authorization server for tests: panva's oidc-provider on 127.0.0.1 with the
// client-credentials grant, JWT access tokens for one resource server, and clients registered by
// the test (client_secret_basic/post and private_key_jwt). Token requests are counted by the
// server's own events, not by wrapping fetch.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider from 'oidc-provider';

export const RESOURCE = 'https://orders.example';
export const SCOPE = 'orders:read';

export interface OidcServer {
  readonly issuer: string;
  readonly tokenUrl: string;
  readonly jwksUrl: string;
  /** Successful client_credentials grants, and failed token requests, as the server saw them. */
  readonly counts: { grants: number; errors: number };
  close(): Promise<void>;
}

export interface OidcClient {
  readonly client_id: string;
  readonly client_secret?: string;
  readonly token_endpoint_auth_method:
    'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';
  readonly jwks?: { keys: JWK[] };
}

export async function startOidcServer(
  clients: readonly OidcClient[],
  accessTokenTtlSeconds = 600,
): Promise<OidcServer> {
  let handler: http.RequestListener = (_req, res) => res.writeHead(503).end();
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingJwk = { ...(await exportJWK(privateKey)), kid: 'as-1', alg: 'RS256', use: 'sig' };
  const provider = new Provider(issuer, {
    clients: clients.map((c) => ({
      ...c,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: SCOPE,
    })),
    jwks: { keys: [signingJwk] },
    scopes: [SCOPE],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => RESOURCE,
        getResourceServerInfo: async (_ctx: unknown, resource: string) => {
          if (resource !== RESOURCE) throw new Error('unknown resource');
          return {
            scope: SCOPE,
            audience: RESOURCE,
            accessTokenTTL: accessTokenTtlSeconds,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
  });
  const counts = { grants: 0, errors: 0 };
  provider.on('grant.success', () => counts.grants++);
  provider.on('grant.error', () => counts.errors++);
  handler = provider.callback();
  return {
    issuer,
    tokenUrl: `${issuer}/token`,
    jwksUrl: `${issuer}/jwks`,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
