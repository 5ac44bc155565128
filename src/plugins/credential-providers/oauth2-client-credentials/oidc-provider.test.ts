// oauth2-client-credentials against a real authorization server (oidc-provider on 127.0.0.1):
// every client-authentication method, tokens verified against the server's JWKS, the cache and
// its single flight counted at the server, and the server's OAuth errors reported.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, exportJWK, exportPKCS8, generateKeyPair, jwtVerify } from 'jose';
import type { CredentialProvider } from '../catalog.ts';
import { createCredentialProvider } from '../catalog.ts';
import { MemorySecrets, deps, record, request } from '../testing/fakes.ts';
import { type OidcServer, RESOURCE, SCOPE, startOidcServer } from '../testing/oidc-server.ts';

const SECRET = `cs-${randomBytes(24).toString('base64url')}`;
let as: OidcServer;
const secrets = new MemorySecrets();
let offset = 0;
const now = () => Date.now() + offset;

before(async () => {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  secrets.set('orders-client-secret', SECRET);
  secrets.set('orders-client-key', await exportPKCS8(privateKey));
  as = await startOidcServer([
    {
      client_id: 'basic-client',
      client_secret: SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: 'post-client',
      client_secret: SECRET,
      token_endpoint_auth_method: 'client_secret_post',
    },
    {
      client_id: 'jwt-client',
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'c1', alg: 'ES256', use: 'sig' }] },
    },
  ]);
});
after(() => as.close());

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

function provider(config: Record<string, unknown>, name = 'orders-oauth'): CredentialProvider {
  return createCredentialProvider(
    record(
      'oauth2-client-credentials',
      { token_url: as.tokenUrl, scope: SCOPE, resource: RESOURCE, ...config },
      name,
    ),
    deps({ secrets, now }),
  );
}

async function verify(token: string) {
  const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(as.jwksUrl)), {
    issuer: as.issuer,
    audience: RESOURCE,
    typ: 'at+jwt',
  });
  return payload;
}

describe('oauth2-client-credentials against oidc-provider', () => {
  for (const [clientId, config] of [
    ['basic-client', { client_secret: 'orders-client-secret' }],
    ['post-client', { client_secret: 'orders-client-secret', auth_method: 'client_secret_post' }],
    ['jwt-client', { private_key: 'orders-client-key' }],
  ] as const) {
    it(`gets a token the server signed (${clientId})`, async () => {
      const p = provider({ client_id: clientId, ...config });
      const before = now();
      const c = await p.release(request());
      assert.equal(c.value.kind, 'token');
      assert.equal(c.leaseId, '');
      const payload = await verify(c.value.kind === 'token' ? c.value.token : '');
      assert.equal(payload.client_id, clientId);
      assert.equal(payload.scope, SCOPE);
      // accessTokenTTL 600 s, measured from when the request was made.
      assert.ok(
        c.expiresAt !== null && c.expiresAt >= before + 599_000 && c.expiresAt <= now() + 600_000,
      );
      await p.close?.();
    });
  }

  it('concurrent releases make one token request; the token is cached until shortly before expiry', async () => {
    offset = 0;
    const p = provider(
      { client_id: 'basic-client', client_secret: 'orders-client-secret' },
      'cached',
    );
    const start = as.counts.grants;
    const got = await Promise.all(Array.from({ length: 12 }, () => p.release(request())));
    assert.equal(as.counts.grants - start, 1, 'one request for twelve callers');
    assert.equal(new Set(got.map((c) => (c.value.kind === 'token' ? c.value.token : ''))).size, 1);
    await p.release(request());
    assert.equal(as.counts.grants - start, 1, 'served from the cache');
    // 600 s token: refreshed 60 s before expiry (10% of its life is 60 s too).
    offset = 530_000;
    await p.release(request());
    assert.equal(as.counts.grants - start, 1, 'still fresh at 530 s');
    offset = 545_000;
    const refreshed = await Promise.all(Array.from({ length: 5 }, () => p.release(request())));
    assert.equal(as.counts.grants - start, 2, 'one refresh for five callers');
    assert.notEqual(refreshed[0]?.value, got[0]?.value);
    offset = 0;
  });

  it('a wrong client secret is reported as invalid_client, naming the endpoint and never the secret', async () => {
    const wrong = `wrong-${randomBytes(16).toString('hex')}`;
    const s = new MemorySecrets().set('bad-secret', wrong);
    const p = createCredentialProvider(
      record(
        'oauth2-client-credentials',
        {
          token_url: as.tokenUrl,
          client_id: 'basic-client',
          client_secret: 'bad-secret',
          resource: RESOURCE,
        },
        'bad',
      ),
      deps({ secrets: s }),
    );
    const errors = as.counts.errors;
    await assert.rejects(p.release(request()), (e: Error) => {
      assert.equal(e.name, 'UnavailableError');
      assert.equal(
        e.message,
        `token endpoint ${as.tokenUrl} refused: invalid_client (client authentication failed) (HTTP 401)`,
      );
      assert.ok(!e.message.includes(wrong) && !e.message.includes(SECRET));
      return true;
    });
    assert.equal(as.counts.errors - errors, 1);
    // A failure is not cached: the next call asks again.
    await assert.rejects(p.release(request()), { name: 'UnavailableError' });
    assert.equal(as.counts.errors - errors, 2);
  });

  it('an unreachable endpoint and a missing secret are told apart', async () => {
    const port = await freePort();
    const closed = createCredentialProvider(
      record(
        'oauth2-client-credentials',
        {
          token_url: `http://127.0.0.1:${port}/token`,
          client_id: 'c',
          client_secret: 'orders-client-secret',
        },
        'down',
      ),
      deps({ secrets }),
    );
    await assert.rejects(closed.release(request()), {
      name: 'UnavailableError',
      message: `token endpoint http://127.0.0.1:${port}/token: cannot reach it: ECONNREFUSED`,
    });
    const missing = provider(
      { client_id: 'basic-client', client_secret: 'no-such-secret' },
      'missing',
    );
    await assert.rejects(missing.release(request()), {
      name: 'FailedPreconditionError',
      message: 'credential provider "missing": secret "no-such-secret" does not exist',
    });
  });
});
