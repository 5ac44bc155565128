// Black-box: the access model through the real CLI against a real server (SQLite): server
// workloads, credential providers and access policies created, listed, shown, updated and
// deleted; duplicates, unknown references and deletes of referenced objects refused with their
// exit codes; imports all or nothing; every change in the audit log.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { builtinCredentialProviders } from '../src/plugins/credential-providers/catalog.ts';
import { runCli } from './helpers/cli-process.ts';
import { makeTlsFiles } from './helpers/https.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';

/** jwt-svid needs no secret: usable whenever the catalog has it (it is empty before `providers` lands). */
const HAVE_JWT_SVID = Object.hasOwn(builtinCredentialProviders, 'jwt-svid');

describe('access model through the CLI', () => {
  let server: ServerProcess;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-access-bb-'));
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  const tessera = (...args: string[]) =>
    runCli(args, { env: { TESSERA_ADMIN_SOCKET: server.adminSocket }, deadlineMs: 90_000 });

  /** Runs a command expected to succeed; its stdout parsed when it is JSON. */
  async function ok(...args: string[]): Promise<Record<string, unknown>> {
    const r = await tessera(...args);
    assert.equal(r.code, 0, `tessera ${args.join(' ')}\n${r.stderr}`);
    return args.includes('json') ? (JSON.parse(r.stdout) as Record<string, unknown>) : {};
  }

  /** Runs a command expected to fail with `code`; its error line must match `message`. */
  async function fails(code: number, message: RegExp | string, ...args: string[]): Promise<void> {
    const r = await tessera(...args);
    assert.equal(r.code, code, `tessera ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
    if (typeof message === 'string') assert.equal(r.stderr.trim(), `error: ${message}`);
    else assert.match(r.stderr, message);
  }

  const snapshot = async () => [
    await ok('server-workload', 'list', '--output', 'json'),
    await ok('credential-provider', 'list', '--output', 'json'),
    await ok('access-policy', 'list', '--output', 'json'),
  ];

  it('server workloads: create, list, show, update, delete; bad input refused', async () => {
    const created = await ok(
      ...['server-workload', 'create', '--name', 'orders-db', '--host', 'db.internal'],
      ...['--port', '5432', '--protocol', 'postgres', '--present', 'postgres-password'],
      ...['--output', 'json'],
    );
    assert.equal(created.present, 'postgres-password');
    await ok(
      ...['server-workload', 'create', '--name', 'billing-api', '--host', '10.1.2.3'],
      ...['--port', '443', '--protocol', 'https', '--path-prefix', '/v2'],
      ...['--present', 'header:X-Api-Key'],
    );
    await fails(
      4,
      'server workload "orders-db" already exists',
      ...['server-workload', 'create', '--name', 'orders-db', '--host', 'h', '--port', '1'],
      ...['--protocol', 'tcp'],
    );
    await fails(
      2,
      'present: postgres-password is for postgres server workloads, not redis',
      ...['server-workload', 'create', '--name', 'cache', '--host', 'cache', '--port', '6379'],
      ...['--protocol', 'redis', '--present', 'postgres-password'],
    );
    await fails(
      2,
      'host: "https://x" has a scheme: give the host only',
      ...['server-workload', 'create', '--name', 'x', '--host', 'https://x', '--port', '1'],
      ...['--protocol', 'tcp'],
    );
    const list = await ok('server-workload', 'list', '--output', 'json');
    assert.deepEqual(
      (list.serverWorkloads as Array<{ name: string }>).map((w) => w.name),
      ['billing-api', 'orders-db'],
    );
    const updated = await ok(
      ...['server-workload', 'update', '--name', 'billing-api', '--port', '8443'],
      ...['--output', 'json'],
    );
    assert.equal(updated.port, 8443);
    assert.equal(updated.pathPrefix, '/v2', 'flags not given keep their value');
    const shown = await ok('server-workload', 'show', 'billing-api', '--output', 'json');
    assert.deepEqual(shown, updated);
    await fails(
      3,
      'server workload "nope" does not exist',
      'server-workload',
      'show',
      '--name',
      'nope',
    );
    const table = await tessera('server-workload', 'list');
    assert.match(table.stdout, /^NAME\s+PROTOCOL\s+HOST/);
  });

  it('server workloads carry TLS facts: --tls, --tls-ca FILE, --tls-decrypt', async () => {
    const { caPem } = makeTlsFiles(dir);
    const caFile = path.join(dir, 'api-ca.pem');
    writeFileSync(caFile, caPem);
    const created = await ok(
      ...['server-workload', 'create', '--name', 'tls-api', '--host', 'api.internal'],
      ...['--port', '443', '--protocol', 'https', '--tls-ca', caFile, '--tls-decrypt'],
      ...['--output', 'json'],
    );
    assert.equal(created.tls, true, 'https implies tls');
    assert.equal(created.tlsDecrypt, true);
    assert.match(String(created.tlsCa), /^-----BEGIN CERTIFICATE-----/);
    const text = await tessera('server-workload', 'show', 'tls-api');
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /tlsCa: +1 PEM certificate\(s\)/);
    const updated = await ok(
      ...['server-workload', 'update', '--name', 'tls-api', '--no-tls-decrypt', '--no-tls-ca'],
      ...['--output', 'json'],
    );
    assert.deepEqual([updated.tls, updated.tlsCa, updated.tlsDecrypt], [true, '', false]);
    const junk = path.join(dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate\n');
    await fails(
      2,
      'tls_ca: holds no PEM certificate (-----BEGIN CERTIFICATE-----)',
      ...['server-workload', 'update', '--name', 'tls-api', '--tls-ca', junk],
    );
    await fails(
      2,
      'tls_decrypt: only http and https can be decrypted, not postgres',
      ...['server-workload', 'create', '--name', 'pg-tls', '--host', 'db', '--port', '5432'],
      ...['--protocol', 'postgres', '--tls', '--tls-decrypt'],
    );
    const db = await ok(
      ...['server-workload', 'create', '--name', 'pg-tls', '--host', 'db', '--port', '5432'],
      ...['--protocol', 'postgres', '--tls', '--output', 'json'],
    );
    assert.deepEqual([db.tls, db.tlsDecrypt], [true, false]);
    await ok('server-workload', 'delete', 'pg-tls');
    await ok('server-workload', 'delete', 'tls-api');
  });

  it('credential providers: unknown types and missing secrets refused; create, show, list', async () => {
    await fails(
      2,
      /^error: unknown credential provider type "nope"/,
      ...['credential-provider', 'create', '--name', 'p', '--type', 'nope', '--set', 'a=b'],
    );
    await fails(
      2,
      'give the config with --config FILE or --set, not both',
      ...['credential-provider', 'create', '--name', 'p', '--type', 'jwt-svid'],
      ...['--set', 'a=b', '--config', path.join(dir, 'none.yaml')],
    );
    if (Object.hasOwn(builtinCredentialProviders, 'static-secret')) {
      await fails(
        7,
        /secret "never-stored" does not exist/,
        ...['credential-provider', 'create', '--name', 'p', '--type', 'static-secret'],
        ...['--set', 'secret=never-stored'],
      );
    }
    if (!HAVE_JWT_SVID) return;
    const file = path.join(dir, 'jwt.yaml');
    writeFileSync(file, 'audience:\n  - billing\n');
    const p = await ok(
      ...['credential-provider', 'create', '--name', 'billing-jwt', '--type', 'jwt-svid'],
      ...['--config', file, '--output', 'json'],
    );
    assert.deepEqual((p.config as { audience: string[] }).audience, ['billing']);
    await fails(
      4,
      'credential provider "billing-jwt" already exists',
      ...['credential-provider', 'create', '--name', 'billing-jwt', '--type', 'jwt-svid'],
      ...['--config', file],
    );
    const shown = await ok('credential-provider', 'show', 'billing-jwt', '--output', 'json');
    assert.deepEqual(shown, p);
    const list = await ok('credential-provider', 'list', '--output', 'json');
    assert.equal((list.credentialProviders as unknown[]).length, 1);
  });

  it('access policies: create, list --server, update, delete; references enforced', async () => {
    await ok(
      ...['access-policy', 'create', '--name', 'no-ci', '--client', 'spiffe://example.org/ci/**'],
      ...['--server', 'orders-db', '--deny'],
    );
    await fails(
      3,
      'access policy "p": server workload "ghost" does not exist',
      ...['access-policy', 'create', '--name', 'p', '--client', 'spiffe://example.org/a'],
      ...['--server', 'ghost', '--deny'],
    );
    await fails(
      3,
      'access policy "p": credential provider "ghost" does not exist',
      ...['access-policy', 'create', '--name', 'p', '--client', 'spiffe://example.org/a'],
      ...['--server', 'orders-db', '--credential-provider', 'ghost'],
    );
    await fails(
      2,
      'credential_provider: an allow policy needs a credential provider',
      ...['access-policy', 'create', '--name', 'p', '--client', 'spiffe://example.org/a'],
      ...['--server', 'orders-db'],
    );
    await fails(
      4,
      'access policy "no-ci" already exists',
      ...['access-policy', 'create', '--name', 'no-ci', '--client', 'spiffe://example.org/a'],
      ...['--server', 'orders-db', '--deny'],
    );
    await fails(
      7,
      'server workload "orders-db" is used by access policy "no-ci": delete or change them first',
      ...['server-workload', 'delete', 'orders-db'],
    );
    const updated = await ok(
      ...['access-policy', 'update', '--name', 'no-ci', '--condition', 'true'],
      ...['--output', 'json'],
    );
    assert.equal(updated.effect, 'deny');
    assert.equal(updated.condition, 'true');
    if (HAVE_JWT_SVID) {
      await ok(
        ...['access-policy', 'create', '--name', 'web-billing'],
        ...['--client', 'spiffe://example.org/ns/prod/sa/web', '--server', 'billing-api'],
        ...['--credential-provider', 'billing-jwt'],
      );
      await fails(
        7,
        'credential provider "billing-jwt" is used by access policy "web-billing": delete or change them first',
        ...['credential-provider', 'delete', 'billing-jwt'],
      );
    }
    const forDb = await ok('access-policy', 'list', '--server', 'orders-db', '--output', 'json');
    assert.deepEqual(
      (forDb.accessPolicies as Array<{ name: string }>).map((p) => p.name),
      ['no-ci'],
    );
    assert.deepEqual(await ok('access-policy', 'show', 'no-ci', '--output', 'json'), updated);
    const deleted = await ok('access-policy', 'delete', '--name', 'no-ci', '--output', 'json');
    assert.equal(deleted.leasesEnded, 0);
    await fails(3, 'access policy "no-ci" does not exist', 'access-policy', 'delete', 'no-ci');
    await ok('server-workload', 'delete', 'orders-db');
  });

  it('import: all or nothing', async () => {
    const before = await snapshot();
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'server_workloads:\n  - name: a\n    port: [\n');
    await fails(
      2,
      /^error: access document: invalid YAML/,
      'access-policy',
      'import',
      '--file',
      bad,
    );
    const oneBad = path.join(dir, 'one-bad.yaml');
    writeFileSync(
      oneBad,
      [
        'server_workloads:',
        '  - {name: new-db, host: new.internal, port: 5432, protocol: postgres}',
        'access_policies:',
        '  - {name: deny-all, client: "spiffe://example.org", server: new-db, deny: true}',
        '  - {name: deny-ghost, client: "spiffe://example.org", server: ghost, deny: true}',
      ].join('\n'),
    );
    await fails(
      3,
      'access policy "deny-ghost": server workload "ghost" does not exist',
      ...['access-policy', 'import', '--file', oneBad],
    );
    const unknownKey = path.join(dir, 'unknown.yaml');
    writeFileSync(
      unknownKey,
      'access_policies:\n  - {name: a, client: "spiffe://x", server: s, deny: true, effect: deny}\n',
    );
    await fails(
      2,
      'access_policies[0].effect: unknown key (known: name, client, server, credential_provider, condition, deny)',
      ...['access-policy', 'import', '--file', unknownKey],
    );
    assert.deepEqual(await snapshot(), before, 'a failed import stores nothing');

    writeFileSync(oneBad, readFileSync(oneBad, 'utf8').replace(/\n.*ghost.*/, ''));
    const res = await ok('access-policy', 'import', '--file', oneBad, '--output', 'json');
    assert.deepEqual(res, { serverWorkloads: 1, credentialProviders: 0, accessPolicies: 1 });
    const shown = await ok('access-policy', 'show', 'deny-all', '--output', 'json');
    assert.equal(shown.server, 'new-db');
  });

  it('every change is audited, no config values in the records', async () => {
    const r = await ok('audit', 'list', '--limit', '1000', '--output', 'json');
    const records = r.records as Array<{
      action: string;
      target: string;
      actor: string;
      details: unknown;
    }>;
    const seen = records.map((x) => `${x.action} ${x.target}`);
    for (const want of [
      'server_workload.create orders-db',
      'server_workload.update billing-api',
      'server_workload.delete orders-db',
      'access_policy.create no-ci',
      'access_policy.update no-ci',
      'access_policy.delete no-ci',
      'access_policy.import ',
      ...(HAVE_JWT_SVID ? ['credential_provider.create billing-jwt'] : []),
    ])
      assert.ok(seen.includes(want), `${want} in\n${seen.join('\n')}`);
    assert.ok(
      records
        .filter((x) => x.action.startsWith('server_workload.'))
        .every((x) => x.actor === 'local-admin'),
    );
    assert.equal(
      seen.filter((s) => s.startsWith('access_policy.import')).length,
      1,
      'failed imports are not recorded',
    );
    const providerRecords = records.filter((x) => x.action.startsWith('credential_provider.'));
    for (const x of providerRecords)
      assert.ok(!JSON.stringify(x.details).includes('"billing"'), 'config values stay out');
  });
});
