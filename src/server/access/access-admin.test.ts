// The access-model admin services over a real SQLite store: audit records (and their absence on
// failure), the injected catalog validator, secret existence, policy check and revocation.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import type { AccessPolicy, LeaseScope } from '../../core/access.ts';
import { ManualClock } from '../../core/clock.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../../core/caller.ts';
import type { AccessAdminDeps } from './access-admin-deps.ts';
import { AccessImport } from './access-import.ts';
import { AccessPolicyAdmin } from './access-policy-admin.ts';
import { CredentialProviderAdmin } from './credential-provider-admin.ts';
import { ServerWorkloadAdmin } from './server-workload-admin.ts';

const NOW = Date.UTC(2030, 0, 1);
const admin: RequestContext = { caller: { kind: 'local-admin' }, correlationId: 'c1' };
let dir = '';
let n = 0;
let store: Store;
let clock: ManualClock;
let revoked: Array<[LeaseScope, string]>;
let secrets: Set<string>;
let workloads: ServerWorkloadAdmin;
let providers: CredentialProviderAdmin;
let policies: AccessPolicyAdmin;
let importer: AccessImport;

/** Stands in for the catalog (empty on this branch): type "static-secret" needs `secret`. */
function fakeValidator(type: string, config: unknown) {
  if (type !== 'static-secret' && type !== 'jwt-svid')
    throw new InvalidArgumentError(`unknown credential provider type "${type}"`);
  const c = (config ?? {}) as Record<string, unknown>;
  if (type === 'static-secret' && typeof c.secret !== 'string')
    throw new InvalidArgumentError(`credential provider type ${type}: config.secret: required`);
  return { config: { ...c }, secrets: type === 'static-secret' ? [c.secret as string] : [] };
}

/** Stands in for check-policy.ts: a client must be a spiffe:// pattern, "bad(" never compiles. */
function fakeCheck(p: AccessPolicy): void {
  if (!p.client.startsWith('spiffe://'))
    throw new InvalidArgumentError(`client: "${p.client}" is not a SPIFFE ID pattern`);
  if (p.condition.includes('bad(')) throw new InvalidArgumentError('condition: does not compile');
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tessera-access-'));
});
after(() => rm(dir, { recursive: true, force: true }));
beforeEach(async () => {
  clock = new ManualClock(NOW);
  store = await openStore({ kind: 'sqlite', path: path.join(dir, `s${n++}.db`) }, clock);
  revoked = [];
  secrets = new Set(['db-pass']);
  const d: AccessAdminDeps = {
    store,
    auditor: new Auditor(clock, store),
    clock,
    validateProviderConfig: fakeValidator,
    secrets: { exists: async (name) => secrets.has(name) },
    checkPolicy: fakeCheck,
    revocation: {
      revoke: async (scope, reason) => {
        revoked.push([scope, reason]);
        return 2;
      },
    },
  };
  workloads = new ServerWorkloadAdmin(d);
  providers = new CredentialProviderAdmin(d);
  policies = new AccessPolicyAdmin(d);
  importer = new AccessImport(d);
});
afterEach(() => store.close());

const db = {
  name: 'db',
  host: 'db.internal',
  port: 5432,
  protocol: 'postgres',
  pathPrefix: '',
  present: 'postgres-password',
  tls: false,
  tlsCa: '',
  tlsDecrypt: false,
};
const allow = {
  name: 'web-db',
  client: 'spiffe://example.org/web',
  server: 'db',
  credentialProvider: 'db-password',
  condition: '',
  deny: false,
};

async function seed(): Promise<void> {
  await workloads.create(admin, db);
  await providers.create(admin, {
    name: 'db-password',
    type: 'static-secret',
    config: { secret: 'db-pass' },
  });
}

const actions = async () => (await store.audit.list({}, 100)).map((r) => `${r.action} ${r.target}`);

describe('access admin services', () => {
  it('server workloads: create, update (keeps createdAt), get, list, delete — audited', async () => {
    const w = await workloads.create(admin, db);
    assert.deepEqual(w, { ...db, createdAt: NOW, updatedAt: NOW });
    clock.advance(1000);
    const u = await workloads.update(admin, { ...db, port: 5433 });
    assert.deepEqual(u, { ...db, port: 5433, createdAt: NOW, updatedAt: NOW + 1000 });
    assert.deepEqual(await workloads.list(), [u]);
    await assert.rejects(workloads.update(admin, { ...db, name: 'nope' }), {
      name: 'NotFoundError',
      message: 'server workload "nope" does not exist',
    });
    await assert.rejects(workloads.get('nope'), { name: 'NotFoundError' });
    await workloads.delete(admin, 'db');
    assert.deepEqual(await actions(), [
      'server_workload.create db',
      'server_workload.update db',
      'server_workload.delete db',
    ]);
    const [rec] = await store.audit.list({ action: 'server_workload.update' }, 1);
    assert.equal(rec?.actor, 'local-admin');
    assert.equal((rec?.details.previous as { port: number }).port, 5432);
  });

  it('bad input changes nothing and audits nothing', async () => {
    await assert.rejects(workloads.create(admin, { ...db, port: 0 }), {
      message: 'port: must be an integer between 1 and 65535',
    });
    await seed();
    await assert.rejects(workloads.create(admin, db), { name: 'AlreadyExistsError' });
    await assert.rejects(policies.create(admin, { ...allow, client: 'web' }), {
      message: 'client: "web" is not a SPIFFE ID pattern',
    });
    await assert.rejects(policies.create(admin, { ...allow, condition: 'bad(' }), {
      message: 'condition: does not compile',
    });
    await assert.rejects(policies.create(admin, { ...allow, server: 'ghost' }), {
      name: 'NotFoundError',
      message: 'access policy "web-db": server workload "ghost" does not exist',
    });
    assert.deepEqual(await policies.list(), []);
    assert.equal((await actions()).length, 2);
  });

  it('providers: config by the injected validator, named secrets must exist; no values audited', async () => {
    await assert.rejects(providers.create(admin, { name: 'p', type: 'nope', config: {} }), {
      name: 'InvalidArgumentError',
      message: 'unknown credential provider type "nope"',
    });
    await assert.rejects(
      providers.create(admin, { name: 'p', type: 'jwt-svid', config: { x: 'y'.repeat(65536) } }),
      { name: 'InvalidArgumentError', message: 'config: larger than 64 KiB' },
    );
    await assert.rejects(
      providers.create(admin, { name: 'p', type: 'static-secret', config: { secret: 'missing' } }),
      {
        name: 'FailedPreconditionError',
        message:
          'credential provider "p": secret "missing" does not exist (create it with `tessera secret put`)',
      },
    );
    const p = await providers.create(admin, {
      name: 'p',
      type: 'static-secret',
      config: { secret: 'db-pass' },
    });
    assert.deepEqual(p.config, { secret: 'db-pass' });
    await assert.rejects(providers.create(admin, { name: 'p', type: 'jwt-svid', config: {} }), {
      name: 'AlreadyExistsError',
    });
    const [rec] = await store.audit.list({ action: 'credential_provider.create' }, 1);
    assert.deepEqual(rec?.details, {
      type: 'static-secret',
      config_keys: ['secret'],
      refers_to: ['db-pass'],
    });
    const gone = await providers.delete(admin, 'p');
    assert.equal(gone.leasesEnded, 2);
    assert.deepEqual(revoked, [[{ provider: 'p' }, 'credential provider "p" deleted']]);
  });

  it('policies: update and delete end leases; deny policies name no provider', async () => {
    await seed();
    const created = await policies.create(admin, allow);
    assert.equal(created.effect, 'allow');
    const deny = await policies.create(admin, {
      ...allow,
      name: 'no-ci',
      client: 'spiffe://example.org/ci/**',
      credentialProvider: '',
      deny: true,
    });
    assert.equal(deny.effect, 'deny');
    const u = await policies.update(admin, { ...allow, condition: 'true' });
    assert.equal(u.policy.condition, 'true');
    assert.equal(u.leasesEnded, 2);
    assert.deepEqual(await policies.list({ server: 'db' }), [deny, u.policy]);
    await assert.rejects(workloads.delete(admin, 'db'), {
      name: 'FailedPreconditionError',
      message:
        'server workload "db" is used by access policies "no-ci", "web-db": delete or change them first',
    });
    const d = await policies.delete(admin, 'web-db');
    assert.equal(d.leasesEnded, 2);
    assert.deepEqual(
      revoked.map(([s]) => s),
      [{ policy: 'web-db' }, { policy: 'web-db' }],
    );
    const [rec] = await store.audit.list({ action: 'access_policy.create' }, 1);
    assert.deepEqual(rec?.details, {
      client: 'spiffe://example.org/web',
      server: 'db',
      provider: 'db-password',
      condition: '',
      effect: 'allow',
    });
  });

  it('import: everything or nothing, audited once, replaced policies lose their leases', async () => {
    await seed();
    await policies.create(admin, allow);
    const doc = `
server_workloads:
  - {name: api, host: api.internal, port: 443, protocol: https, present: authorization-bearer}
credential_providers:
  - {name: api-token, type: jwt-svid}
access_policies:
  - {name: web-db, client: "spiffe://example.org/web", server: db, credential_provider: db-password, condition: "true"}
  - {name: web-api, client: "spiffe://example.org/web", server: api, credential_provider: api-token}
`;
    assert.deepEqual(await importer.import(admin, doc), {
      serverWorkloads: 1,
      credentialProviders: 1,
      accessPolicies: 2,
    });
    assert.deepEqual(
      (await policies.list()).map((p) => p.name),
      ['web-api', 'web-db'],
    );
    assert.deepEqual(
      revoked.map(([s]) => s),
      [{ policy: 'web-db' }],
    );
    const [rec] = await store.audit.list({ action: 'access_policy.import' }, 1);
    assert.equal(rec?.details.replaced_access_policies, 1);

    const before = JSON.stringify([
      await workloads.list(),
      await providers.list(),
      await policies.list(),
    ]);
    const count = (await actions()).length;
    const bad = [
      [
        doc.replace('port: 443', 'port: 0'),
        'server_workloads[0].port: must be an integer between 1 and 65535',
      ],
      [
        doc.replace('type: jwt-svid', 'type: nope'),
        'credential_providers[0]: unknown credential provider type "nope"',
      ],
      [
        doc.replace('server: api,', 'server: ghost,'),
        'access policy "web-api": server workload "ghost" does not exist',
      ],
      [
        doc.replace('condition: "true"', 'condition: "bad("'),
        'access_policies[0].condition: does not compile',
      ],
      [
        doc.replace('"spiffe://example.org/web", server: api', '"web", server: api'),
        'access_policies[1].client: "web" is not a SPIFFE ID pattern',
      ],
      [
        doc.replace(
          '{name: api-token, type: jwt-svid}',
          '{name: api-token, type: static-secret, config: {secret: gone}}',
        ),
        'credential_providers[0]: credential provider "api-token": secret "gone" does not exist (create it with `tessera secret put`)',
      ],
      ['server_workloads: [', /^access document: invalid YAML/],
    ] as const;
    for (const [text, message] of bad) {
      await assert.rejects(importer.import(admin, text), (e: Error) => {
        if (typeof message === 'string') assert.equal(e.message, message);
        else assert.match(e.message, message);
        return true;
      });
    }
    assert.equal(
      JSON.stringify([await workloads.list(), await providers.list(), await policies.list()]),
      before,
    );
    assert.equal((await actions()).length, count);
  });

  it('a failing audit fails the change (fail closed)', async () => {
    const closedAudit = {
      ...store,
      transaction: <T>(fn: Parameters<Store['transaction']>[0]) =>
        store.transaction(
          (tx) =>
            fn({
              ...tx,
              audit: {
                ...tx.audit,
                append: async () => {
                  throw new Error('audit down');
                },
              },
            }) as Promise<T>,
        ),
    } as Store;
    const w = new ServerWorkloadAdmin({
      store: closedAudit,
      auditor: new Auditor(clock, closedAudit),
      clock,
    });
    await assert.rejects(w.create(admin, db), /audit down/);
    assert.equal(await store.access.getServerWorkload('db'), null);
  });
});
