import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { azureCloudEnv, azureEnv } from './azure.ts';
import { gcpCloudEnv, gcpEnv } from './gcp.ts';

const PROVIDER =
  '//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/tessera/providers/example-org';

describe('tessera cloud env builders', () => {
  it('gcp: GCE metadata host by default', () => {
    assert.deepEqual(gcpEnv({ agentAddress: '127.0.0.1:8181' }), {
      env: { GCE_METADATA_HOST: '127.0.0.1:8181' },
    });
    assert.throws(
      () => gcpEnv({ agentAddress: '10.0.0.1:8181' }),
      /expected the agent's cloud\.listen/,
    );
    assert.throws(
      () => gcpEnv({ agentAddress: '127.0.0.1:8181', serverWorkload: 'gcs' }),
      /cloud\.gcp\.server_workload/,
    );
  });

  it('gcp: external account config with the agent identity URL or a token file', () => {
    const out = gcpEnv({
      agentAddress: '127.0.0.1:8181',
      audience: PROVIDER,
      configPath: '/etc/app/gcp.json',
    });
    assert.deepEqual(out.env, { GOOGLE_APPLICATION_CREDENTIALS: '/etc/app/gcp.json' });
    const config = JSON.parse(out.files?.[0]?.content ?? '') as Record<string, unknown>;
    assert.deepEqual(config, {
      type: 'external_account',
      audience: PROVIDER,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: 'https://sts.googleapis.com/v1/token',
      credential_source: {
        url: `http://127.0.0.1:8181/computeMetadata/v1/instance/service-accounts/default/identity?audience=${encodeURIComponent(`https:${PROVIDER}`)}&format=full`,
        headers: { 'Metadata-Flavor': 'Google' },
        format: { type: 'text' },
      },
    });
    const file = gcpEnv({
      agentAddress: '127.0.0.1:8181',
      audience: PROVIDER,
      configPath: '/etc/app/gcp.json',
      tokenFile: '/var/lib/tessera/tokens/gcp.jwt',
      serviceAccount: 'orders@orders-prod.iam.gserviceaccount.com',
    });
    const c = JSON.parse(file.files?.[0]?.content ?? '') as Record<string, unknown>;
    assert.deepEqual(c['credential_source'], {
      file: '/var/lib/tessera/tokens/gcp.jwt',
      format: { type: 'text' },
    });
    assert.match(
      String(c['service_account_impersonation_url']),
      /orders@orders-prod\.iam\.gserviceaccount\.com:generateAccessToken$/,
    );
    assert.throws(
      () => gcpEnv({ agentAddress: '127.0.0.1:1', audience: 'projects/1', configPath: '/x' }),
      /workload identity pool provider/,
    );
    assert.throws(
      () => gcpEnv({ agentAddress: '127.0.0.1:1', audience: PROVIDER }),
      /--config-file/,
    );
  });

  it('azure: IMDS, App Service, workload identity', () => {
    assert.deepEqual(azureEnv({ agentAddress: '127.0.0.1:8181' }).env, {
      AZURE_POD_IDENTITY_AUTHORITY_HOST: 'http://127.0.0.1:8181',
    });
    assert.deepEqual(azureEnv({ agentAddress: '127.0.0.1:8181', serverWorkload: 'blob' }).env, {
      AZURE_CLIENT_ID: 'blob',
      AZURE_POD_IDENTITY_AUTHORITY_HOST: 'http://127.0.0.1:8181',
    });
    const header = 'A'.repeat(43);
    assert.deepEqual(azureEnv({ agentAddress: '[::1]:8181', identityHeader: header }).env, {
      IDENTITY_ENDPOINT: 'http://[::1]:8181/msi/token',
      IDENTITY_HEADER: header,
    });
    assert.throws(
      () => azureEnv({ agentAddress: '127.0.0.1:8181', identityHeader: 'x\r\ny' }),
      /not an identity header/,
    );
    const tenant = '72f988bf-86f1-41af-91ab-2d7cd011db47';
    const client = '0b6c9a4e-1f2d-4c3b-8a7e-9d5f6e4c3b2a';
    assert.deepEqual(
      azureEnv({
        agentAddress: '127.0.0.1:8181',
        tokenFile: '/t/azure.jwt',
        tenantId: tenant,
        clientId: client,
      }).env,
      {
        AZURE_FEDERATED_TOKEN_FILE: '/t/azure.jwt',
        AZURE_TENANT_ID: tenant,
        AZURE_CLIENT_ID: client,
      },
    );
    assert.throws(
      () => azureEnv({ agentAddress: '127.0.0.1:8181', tokenFile: '/t' }),
      /--tenant-id and --client-id/,
    );
  });
});

describe('tessera cloud env dispatch builders', () => {
  const input = {
    address: '127.0.0.1:8181',
    serverWorkload: '',
    uid: 1000,
    tokenFiles: [
      { path: '/t/gcp.jwt', uid: 1000, audience: `https:${PROVIDER}` },
      { path: '/t/azure.jwt', uid: 1000, audience: 'api://AzureADTokenExchange' },
      { path: '/t/other.jwt', uid: 1001, audience: 'api://AzureADTokenExchange' },
    ].map((f) => ({ ...f, spiffe_id: 'spiffe://example.org/web' })),
    awsContainerTokenFiles: [],
  };
  it("gcp: takes the uid's token file of the pool audience from the agent config", () => {
    const out = gcpCloudEnv({ ...input, options: { audience: PROVIDER, configFile: '/c.json' } });
    assert.deepEqual(out.env, { GOOGLE_APPLICATION_CREDENTIALS: '/c.json' });
    assert.match(out.files?.[0]?.content ?? '', /"file": "\/t\/gcp\.jwt"/);
  });
  it("azure: workload identity with the uid's token file; IMDS otherwise", () => {
    const tenant = '72f988bf-86f1-41af-91ab-2d7cd011db47';
    const client = '0b6c9a4e-1f2d-4c3b-8a7e-9d5f6e4c3b2a';
    const out = azureCloudEnv({ ...input, options: { tenantId: tenant, clientId: client } });
    assert.equal(out.env['AZURE_FEDERATED_TOKEN_FILE'], '/t/azure.jwt');
    assert.deepEqual(azureCloudEnv({ ...input, serverWorkload: 'blob', options: {} }).env, {
      AZURE_CLIENT_ID: 'blob',
      AZURE_POD_IDENTITY_AUTHORITY_HOST: 'http://127.0.0.1:8181',
    });
    // Another uid's file is not this uid's; without one of its own, the error names the key.
    assert.throws(
      () => azureCloudEnv({ ...input, uid: 1002, options: { tenantId: tenant, clientId: client } }),
      /no cloud\.token_files entry with audience api:\/\/AzureADTokenExchange for uid 1002/,
    );
    assert.throws(
      () =>
        azureCloudEnv({
          ...input,
          options: { tenantId: tenant, clientId: client, authorityHost: 'http://127.0.0.1:9' },
        }),
      /--authority-host: .* must be an https:\/\/ URL/,
    );
  });
  it('gcp: --token-url must be https (or http to loopback)', () => {
    const options = { audience: PROVIDER, configFile: '/c.json' };
    assert.throws(
      () =>
        gcpCloudEnv({
          ...input,
          options: { ...options, tokenUrl: 'http://sts.example.com/v1/token' },
        }),
      /--token-url/,
    );
    const out = gcpCloudEnv({
      ...input,
      options: { ...options, tokenUrl: 'http://127.0.0.1:9/v1/token' },
    });
    assert.match(
      out.files?.[0]?.content ?? '',
      /"token_url": "http:\/\/127\.0\.0\.1:9\/v1\/token"/,
    );
  });
});
