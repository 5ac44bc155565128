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
  it('lists the nine built-in types', () => {
    assert.deepEqual(Object.keys(builtinCredentialProviders).sort(), [
      'access-token',
      'aws-sts',
      'azure-federated',
      'gcp-wif',
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
    const aws = v('aws-sts', { role_arn: 'arn:aws:iam::123456789012:role/r' });
    assert.deepEqual(aws, {
      config: {
        role_arn: 'arn:aws:iam::123456789012:role/r',
        audience: 'sts.amazonaws.com',
        duration: '1h',
        sts_endpoint: 'https://sts.amazonaws.com',
        timeout_ms: 10_000,
      },
      secrets: [],
    });
    assert.deepEqual(v('aws-sts', aws.config), aws);
    const gcp = v('gcp-wif', { project_number: '123', pool_id: 'tessera', provider_id: 'td-1' });
    assert.deepEqual(gcp.config, {
      project_number: '123',
      pool_id: 'tessera',
      provider_id: 'td-1',
      scopes: ['https://www.googleapis.com/auth/cloud-platform'],
      lifetime: '1h',
      sts_endpoint: 'https://sts.googleapis.com/v1/token',
      iam_credentials_endpoint: 'https://iamcredentials.googleapis.com',
      timeout_ms: 10_000,
    });
    assert.deepEqual(v('gcp-wif', gcp.config), gcp);
    assert.deepEqual(
      v('gcp-wif', { ...gcp.config, project_number: 123 }),
      gcp,
      'a YAML number is taken as its digits',
    );
    const azure = v('azure-federated', {
      tenant_id: 'contoso.onmicrosoft.com',
      client_id: '11111111-2222-3333-4444-555555555555',
      scope: 'https://storage.azure.com/.default',
    });
    assert.equal(azure.config.audience, 'api://AzureADTokenExchange');
    assert.equal(azure.config.authority_host, 'https://login.microsoftonline.com');
    assert.deepEqual(v('azure-federated', azure.config), azure);
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
    [
      'aws-sts',
      { role_arn: 'arn:aws:iam::123:role/r' },
      /config\.role_arn: must be an IAM role ARN/,
    ],
    [
      'aws-sts',
      { role_arn: 'arn:aws:iam::123456789012:role/r', duration: '5m' },
      /config\.duration: must be between 900s and 43200s/,
    ],
    [
      'aws-sts',
      { role_arn: 'arn:aws:iam::123456789012:role/r', sts_endpoint: 'http://sts.example' },
      /config\.sts_endpoint: must be https:\/\/ \(http:\/\/ only to loopback\)/,
    ],
    [
      'aws-sts',
      { role_arn: 'arn:aws:iam::123456789012:role/r', sts_endpoint: 'https://u:p@sts.example' },
      /config\.sts_endpoint: must not hold credentials, a query or a fragment/,
    ],
    [
      'gcp-wif',
      { project_number: 'my-project', pool_id: 'pool', provider_id: 'prov' },
      /config\.project_number: must be the numeric project number/,
    ],
    [
      'gcp-wif',
      { project_number: '1', pool_id: 'gcp-pool', provider_id: 'prov' },
      /config\.pool_id: the prefix "gcp-" is reserved by Google/,
    ],
    [
      'gcp-wif',
      { project_number: '1', pool_id: 'pool', provider_id: 'prov', service_account: 'x' },
      /config\.service_account: must be a service account email/,
    ],
    [
      'gcp-wif',
      { project_number: '1', pool_id: 'pool', provider_id: 'prov', id_token_audience: 'x' },
      /config\.id_token_audience: an ID token is generated for a service account/,
    ],
    [
      'azure-federated',
      { tenant_id: 't', client_id: 'app', scope: 'https://storage.azure.com/.default' },
      /config\.client_id: must be an application \(client\) ID \(a GUID\)/,
    ],
    [
      'azure-federated',
      {
        tenant_id: 't',
        client_id: '11111111-2222-3333-4444-555555555555',
        scope: 'https://storage.azure.com/user_impersonation',
      },
      /config\.scope: must be a resource's "\.default" scope/,
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
