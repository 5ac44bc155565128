// Black-box: cloud targets through the real CLI against a real server (SQLite): server workloads
// with --protocol aws|gcp|azure need no host or port and take no present; the cloud credential
// providers are created with their config checked; a policy grants a client the cloud target and
// `access-policy test` decides it like any other.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runCli } from './helpers/cli-process.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';

const WEB = 'spiffe://example.org/ns/prod/sa/web';

describe('cloud server workloads and providers through the CLI', () => {
  let server: ServerProcess;

  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  const tessera = (...args: string[]) =>
    runCli(args, { env: { TESSERA_ADMIN_SOCKET: server.adminSocket }, deadlineMs: 90_000 });

  async function ok(...args: string[]): Promise<Record<string, unknown>> {
    const r = await tessera(...args);
    assert.equal(r.code, 0, `tessera ${args.join(' ')}\n${r.stderr}`);
    return args.includes('json') ? (JSON.parse(r.stdout) as Record<string, unknown>) : {};
  }

  async function fails(code: number, message: string, ...args: string[]): Promise<void> {
    const r = await tessera(...args);
    assert.equal(r.code, code, `tessera ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
    assert.equal(r.stderr.trim(), `error: ${message}`);
  }

  it('server workloads: --protocol aws|gcp|azure without host or port', async () => {
    const s3 = await ok(
      ...['server-workload', 'create', '--name', 's3', '--protocol', 'aws'],
      ...['--output', 'json'],
    );
    assert.deepEqual(
      { host: s3.host, port: s3.port, protocol: s3.protocol, present: s3.present },
      { host: '', port: 0, protocol: 'aws', present: '' },
    );
    const gcs = await ok(
      ...['server-workload', 'create', '--name', 'gcs', '--protocol', 'gcp'],
      ...['--host', 'storage.googleapis.com', '--port', '443', '--output', 'json'],
    );
    assert.equal(gcs.host, 'storage.googleapis.com');
    await fails(
      2,
      'present: azure server workloads take no present: the cloud SDK fetches the credential from the agent',
      ...['server-workload', 'create', '--name', 'blob', '--protocol', 'azure'],
      ...['--present', 'authorization-bearer'],
    );
    await fails(
      2,
      '--host is required (optional only for --protocol aws, gcp and azure)',
      ...['server-workload', 'create', '--name', 'api', '--protocol', 'https', '--port', '443'],
    );
    await fails(
      2,
      '--port is required (optional only for --protocol aws, gcp and azure)',
      ...['server-workload', 'create', '--name', 'api', '--protocol', 'https', '--host', 'api'],
    );
    const table = await tessera('server-workload', 'list');
    assert.match(table.stdout, /^s3\s+aws\s+-\s+-\s/m, 'no host, no port shown');
  });

  it('cloud providers: config checked; a policy grants the cloud target', async () => {
    await fails(
      2,
      'credential provider type aws-sts: config.role_arn: must be an IAM role ARN (arn:aws:iam::123456789012:role/NAME)',
      ...['credential-provider', 'create', '--name', 'orders-aws', '--type', 'aws-sts'],
      ...['--set', 'role_arn=orders-reader'],
    );
    const p = await ok(
      ...['credential-provider', 'create', '--name', 'orders-aws', '--type', 'aws-sts'],
      ...['--set', 'role_arn=arn:aws:iam::123456789012:role/orders-reader'],
      ...['--output', 'json'],
    );
    assert.deepEqual(p.config, {
      role_arn: 'arn:aws:iam::123456789012:role/orders-reader',
      audience: 'sts.amazonaws.com',
      duration: '1h',
      sts_endpoint: 'https://sts.amazonaws.com',
      timeout_ms: 10000,
    });
    await ok(
      ...['credential-provider', 'create', '--name', 'orders-gcp', '--type', 'gcp-wif'],
      ...['--set', 'project_number=123456789', '--set', 'pool_id=tessera'],
      ...['--set', 'provider_id=example-org'],
    );
    await ok(
      ...['credential-provider', 'create', '--name', 'orders-azure', '--type', 'azure-federated'],
      ...['--set', 'tenant_id=contoso.onmicrosoft.com'],
      ...['--set', 'client_id=0b6c9a4e-1f2d-4c3b-8a7e-9d5f6e4c3b2a'],
      ...['--set', 'scope=https://storage.azure.com/.default'],
    );
    await ok(
      ...['access-policy', 'create', '--name', 'web-s3', '--client', WEB, '--server', 's3'],
      ...['--credential-provider', 'orders-aws'],
    );
    const d = await ok(
      ...['access-policy', 'test', '--client', WEB, '--server', 's3', '--output', 'json'],
    );
    assert.equal(d.decision, 'allow');
    assert.equal(d.credentialProvider, 'orders-aws');
  });
});
