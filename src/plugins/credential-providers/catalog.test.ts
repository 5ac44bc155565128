import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  builtinCredentialProviders,
  createCredentialProvider,
  validateCredentialProviderConfig,
} from './catalog.ts';
import { deps, record } from './testing/fakes.ts';

const v = validateCredentialProviderConfig;

describe('credential-provider catalog', () => {
  it('lists the six built-in types', () => {
    assert.deepEqual(Object.keys(builtinCredentialProviders).sort(), [
      'access-token',
      'jwt-svid',
      'oauth2-client-credentials',
      'postgres-dynamic',
      'signed-jwt',
      'static-secret',
    ]);
  });

  it('an unknown type names the built-in ones', () => {
    assert.throws(() => v('vault', {}), {
      name: 'InvalidArgumentError',
      message: /unknown credential provider type "vault" \(built-in: static-secret, /,
    });
  });

  it('fills defaults and names the secrets, idempotently', () => {
    const first = v('static-secret', { secret: 'api-key' });
    assert.deepEqual(first, {
      config: { secret: 'api-key', format: 'value' },
      secrets: ['api-key'],
    });
    assert.deepEqual(v('static-secret', first.config), first);
    const pg = v('postgres-dynamic', {
      host: 'db',
      database: 'orders',
      admin_user: 'vault',
      admin_password: 'pg-admin',
      grants: ['grant select on orders to {{role}}'],
    });
    assert.equal(pg.config.ttl, '1h');
    assert.equal(pg.config.role_prefix, 'tessera_');
    assert.equal(pg.config.sslmode, 'verify-full');
    assert.deepEqual(pg.secrets, ['pg-admin']);
    assert.deepEqual(v('postgres-dynamic', pg.config), pg);
    assert.deepEqual(
      v('oauth2-client-credentials', {
        token_url: 'https://idp.example/token',
        client_id: 'c',
        private_key: 'k',
      }).secrets,
      ['k'],
    );
    assert.deepEqual(v('jwt-svid', { audience: ['a'] }).secrets, []);
  });

  const refused: [string, unknown, RegExp][] = [
    ['static-secret', { secret: 'k', extra: 1 }, /config: unknown key "extra"/],
    ['static-secret', { secret: 'Bad Name' }, /config\.secret: must be a secret name/],
    ['static-secret', { secret: 'k', username: 'u' }, /config\.username: .*username-password/],
    ['static-secret', { secret: 'k', format: 'pem' }, /config\.format: /],
    ['jwt-svid', { audience: [] }, /config\.audience: /],
    ['jwt-svid', { audience: ['a'], ttl: 'soon' }, /config\.ttl: invalid duration "soon"/],
    ['jwt-svid', { audience: ['a'], ttl: '48h' }, /config\.ttl: must be between 10s and 86400s/],
    [
      'access-token',
      { audience: 'a', scopes: ['a b'] },
      /config\.scopes\.0: must be a scope token/,
    ],
    [
      'signed-jwt',
      { private_key: 'k', claims: { exp: 1 } },
      /config\.claims\.exp: set by the provider/,
    ],
    [
      'signed-jwt',
      { private_key: 'k', claims: { sub: '{{client.secret}}' } },
      /config\.claims\.sub: unknown placeholder \{\{client\.secret\}\}/,
    ],
    [
      'oauth2-client-credentials',
      { token_url: 'http://idp.example/token', client_id: 'c', client_secret: 's' },
      /config\.token_url: must be https:\/\/ \(http:\/\/ only to loopback\)/,
    ],
    [
      'oauth2-client-credentials',
      { token_url: 'https://idp.example/token', client_id: 'c' },
      /config\.client_secret: set exactly one of client_secret and private_key/,
    ],
    [
      'oauth2-client-credentials',
      {
        token_url: 'https://idp/t',
        client_id: 'c',
        client_secret: 's',
        auth_method: 'private_key_jwt',
      },
      /config\.auth_method: private_key_jwt needs private_key/,
    ],
    [
      'postgres-dynamic',
      {
        host: 'h',
        database: 'd',
        admin_user: 'a',
        admin_password: 's',
        grants: ['grant x to {{user}}'],
      },
      /config\.grants\.0: unknown placeholder \{\{user\}\}/,
    ],
    [
      'postgres-dynamic',
      {
        host: 'h',
        database: 'd',
        admin_user: 'a',
        admin_password: 's',
        grants: ['g'],
        role_prefix: 'X-',
      },
      /config\.role_prefix: /,
    ],
    [
      'postgres-dynamic',
      { host: 'h', database: 'd', admin_user: 'a', admin_password: 's', grants: [] },
      /config\.grants: /,
    ],
  ];
  for (const [type, config, message] of refused) {
    it(`refuses ${type} ${JSON.stringify(config).slice(0, 70)}`, () => {
      assert.throws(() => v(type, config), { name: 'InvalidArgumentError', message });
    });
  }

  it('createCredentialProvider validates the stored config again', () => {
    assert.throws(() => createCredentialProvider(record('jwt-svid', { audience: 'x' }), deps()), {
      name: 'InvalidArgumentError',
    });
    const p = createCredentialProvider(record('jwt-svid', { audience: ['x'] }, 'svid'), deps());
    assert.equal(p.type, 'jwt-svid');
    assert.equal(p.name, 'svid');
  });
});
