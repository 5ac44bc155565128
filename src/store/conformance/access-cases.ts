// Conformance: AccessStore (server workloads, credential providers, access policies, import).
import assert from 'node:assert/strict';
import type { AccessPolicy, CredentialProviderRecord, ServerWorkload } from '../../core/access.ts';
import type { Store } from '../types.ts';
import { type Cases, T0 } from './fixtures.ts';

export const workload = (name: string, over: Partial<ServerWorkload> = {}): ServerWorkload => ({
  name,
  host: `${name}.internal`,
  port: 5432,
  protocol: 'postgres',
  pathPrefix: '',
  present: 'postgres-password',
  tls: false,
  tlsCa: '',
  tlsDecrypt: false,
  createdAt: T0,
  updatedAt: T0,
  ...over,
});

export const provider = (
  name: string,
  over: Partial<CredentialProviderRecord> = {},
): CredentialProviderRecord => ({
  name,
  type: 'static-secret',
  config: { secret: `${name}-secret`, nested: { n: 1, b: true } },
  createdAt: T0,
  updatedAt: T0,
  ...over,
});

export const policy = (name: string, over: Partial<AccessPolicy> = {}): AccessPolicy => ({
  name,
  client: 'spiffe://example.org/ns/prod/*',
  server: 'db',
  credentialProvider: 'db-password',
  condition: 'now.getHours() < 18',
  effect: 'allow',
  createdAt: T0,
  updatedAt: T0,
  ...over,
});

async function seed(s: Store): Promise<void> {
  await s.access.createServerWorkload(workload('db'));
  await s.access.createCredentialProvider(provider('db-password'));
}

/** Counts `access` announcements of this store's own commits. */
function accessCommits(s: Store): { readonly count: () => number; off(): void } {
  let n = 0;
  const off = s.notifications.subscribe('access', (_t, source) => {
    if (source === 'local') n++;
  });
  return { count: () => n, off };
}

async function snapshot(s: Store): Promise<unknown> {
  return {
    w: await s.access.listServerWorkloads(),
    p: await s.access.listCredentialProviders(),
    a: await s.access.listAccessPolicies(),
  };
}

export const accessCases: Cases = {
  'server workloads: create, get, list by name, update keeps createdAt, delete': async (s) => {
    assert.equal(await s.access.getServerWorkload('db'), null);
    const b = workload('b', { protocol: 'https', port: 443, pathPrefix: '/v1', present: 'basic' });
    assert.deepEqual(await s.access.createServerWorkload(b), b);
    await s.access.createServerWorkload(workload('a'));
    await assert.rejects(s.access.createServerWorkload(workload('b')), {
      name: 'AlreadyExistsError',
      message: 'server workload "b" already exists',
    });
    assert.deepEqual(await s.access.getServerWorkload('b'), b);
    assert.deepEqual(
      (await s.access.listServerWorkloads()).map((w) => w.name),
      ['a', 'b'],
    );
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const tls = workload('t', { tls: true, tlsCa: pem, tlsDecrypt: true });
    assert.deepEqual(await s.access.createServerWorkload(tls), tls);
    assert.deepEqual(await s.access.getServerWorkload('t'), tls);
    await s.access.deleteServerWorkload('t');
    const changed = workload('b', { host: '10.0.0.1', port: 6379, protocol: 'redis', tls: true });
    const updated = await s.access.updateServerWorkload({
      ...changed,
      createdAt: T0 + 99,
      updatedAt: T0 + 5,
    });
    assert.deepEqual(updated, { ...changed, updatedAt: T0 + 5 });
    assert.deepEqual(await s.access.getServerWorkload('b'), updated);
    await assert.rejects(s.access.updateServerWorkload(workload('zz')), {
      name: 'NotFoundError',
      message: 'server workload "zz" does not exist',
    });
    assert.deepEqual(await s.access.deleteServerWorkload('b'), updated);
    assert.equal(await s.access.getServerWorkload('b'), null);
    await assert.rejects(s.access.deleteServerWorkload('b'), { name: 'NotFoundError' });
  },

  'credential providers: create, get, list, delete; config round-trips as JSON': async (s) => {
    const p = provider('p1');
    assert.deepEqual(await s.access.createCredentialProvider(p), p);
    await s.access.createCredentialProvider(provider('p0', { type: 'jwt-svid', config: {} }));
    await assert.rejects(s.access.createCredentialProvider(provider('p1')), {
      name: 'AlreadyExistsError',
      message: 'credential provider "p1" already exists',
    });
    assert.deepEqual(await s.access.getCredentialProvider('p1'), p);
    assert.deepEqual(
      (await s.access.listCredentialProviders()).map((x) => x.name),
      ['p0', 'p1'],
    );
    assert.deepEqual(await s.access.deleteCredentialProvider('p1'), p);
    assert.equal(await s.access.getCredentialProvider('p1'), null);
    await assert.rejects(s.access.deleteCredentialProvider('p1'), {
      name: 'NotFoundError',
      message: 'credential provider "p1" does not exist',
    });
  },

  'access policies: create, list filtered by server, update, delete': async (s) => {
    await seed(s);
    await s.access.createServerWorkload(workload('api', { protocol: 'https', port: 443 }));
    const a = policy('a');
    assert.deepEqual(await s.access.createAccessPolicy(a), a);
    const deny = policy('b-deny', { server: 'api', credentialProvider: '', effect: 'deny' });
    await s.access.createAccessPolicy(deny);
    await assert.rejects(s.access.createAccessPolicy(policy('a')), {
      name: 'AlreadyExistsError',
      message: 'access policy "a" already exists',
    });
    assert.deepEqual(await s.access.getAccessPolicy('b-deny'), deny);
    assert.deepEqual(
      (await s.access.listAccessPolicies()).map((p) => p.name),
      ['a', 'b-deny'],
    );
    assert.deepEqual(await s.access.listAccessPolicies({ server: 'api' }), [deny]);
    assert.deepEqual(await s.access.listAccessPolicies({ server: 'none' }), []);
    const changed = policy('a', { server: 'api', condition: '', updatedAt: T0 + 7 });
    assert.deepEqual(
      await s.access.updateAccessPolicy({ ...changed, createdAt: T0 + 1000 }),
      changed,
    );
    await assert.rejects(s.access.updateAccessPolicy(policy('nope')), {
      name: 'NotFoundError',
      message: 'access policy "nope" does not exist',
    });
    assert.deepEqual(await s.access.deleteAccessPolicy('a'), changed);
    await assert.rejects(s.access.deleteAccessPolicy('a'), { name: 'NotFoundError' });
  },

  'a policy naming an unknown server workload or provider is refused': async (s) => {
    await seed(s);
    await assert.rejects(s.access.createAccessPolicy(policy('a', { server: 'ghost' })), {
      name: 'NotFoundError',
      message: 'access policy "a": server workload "ghost" does not exist',
    });
    await assert.rejects(
      s.access.createAccessPolicy(policy('a', { credentialProvider: 'ghost' })),
      {
        name: 'NotFoundError',
        message: 'access policy "a": credential provider "ghost" does not exist',
      },
    );
    await s.access.createAccessPolicy(policy('a'));
    await assert.rejects(s.access.updateAccessPolicy(policy('a', { server: 'ghost' })), {
      name: 'NotFoundError',
    });
    assert.deepEqual(await s.access.getAccessPolicy('a'), policy('a'));
  },

  'deleting a server workload or provider that policies use is refused, naming them': async (s) => {
    await seed(s);
    await s.access.createAccessPolicy(policy('p2'));
    await s.access.createAccessPolicy(policy('p1'));
    await assert.rejects(s.access.deleteServerWorkload('db'), {
      name: 'FailedPreconditionError',
      message:
        'server workload "db" is used by access policies "p1", "p2": delete or change them first',
    });
    await assert.rejects(s.access.deleteCredentialProvider('db-password'), {
      name: 'FailedPreconditionError',
      message:
        'credential provider "db-password" is used by access policies "p1", "p2": delete or change them first',
    });
    await s.access.deleteAccessPolicy('p1');
    await s.access.deleteAccessPolicy('p2');
    await s.access.deleteCredentialProvider('db-password');
    await s.access.deleteServerWorkload('db');
  },

  'every mutation announces "access"; failures and reads announce nothing': async (s) => {
    const seen = accessCommits(s);
    await seed(s);
    await s.access.createAccessPolicy(policy('a'));
    await s.access.updateAccessPolicy(policy('a', { condition: '' }));
    await s.access.updateServerWorkload(workload('db', { port: 5433 }));
    assert.equal(seen.count(), 5);
    await assert.rejects(s.access.createAccessPolicy(policy('b', { server: 'x' })));
    await assert.rejects(s.access.deleteServerWorkload('db'));
    await s.access.listAccessPolicies();
    assert.equal(seen.count(), 5);
    await s.access.deleteAccessPolicy('a');
    await s.access.importDocument({
      serverWorkloads: [],
      credentialProviders: [],
      accessPolicies: [],
    });
    assert.equal(seen.count(), 7);
    seen.off();
  },

  'importDocument creates or replaces everything, keeping createdAt': async (s) => {
    await seed(s);
    await s.access.createAccessPolicy(policy('old'));
    const res = await s.access.importDocument({
      serverWorkloads: [workload('db', { port: 6000, createdAt: T0 + 50 }), workload('api')],
      credentialProviders: [provider('tok')],
      accessPolicies: [
        policy('old', { server: 'api', credentialProvider: 'tok', createdAt: T0 + 50 }),
        policy('new', { credentialProvider: '', effect: 'deny' }),
      ],
    });
    assert.deepEqual(res, {
      replaced: { serverWorkloads: ['db'], credentialProviders: [], accessPolicies: ['old'] },
    });
    assert.deepEqual(await s.access.getServerWorkload('db'), workload('db', { port: 6000 }));
    assert.deepEqual(
      await s.access.getAccessPolicy('old'),
      policy('old', { server: 'api', credentialProvider: 'tok' }),
    );
    assert.deepEqual(
      (await s.access.listAccessPolicies()).map((p) => p.name),
      ['new', 'old'],
    );
  },

  'importDocument is all or nothing: an unknown reference or a duplicate stores nothing': async (
    s,
  ) => {
    await seed(s);
    const before = await snapshot(s);
    await assert.rejects(
      s.access.importDocument({
        serverWorkloads: [workload('api'), workload('db', { port: 1 })],
        credentialProviders: [provider('tok')],
        accessPolicies: [policy('ok'), policy('bad', { server: 'ghost' })],
      }),
      {
        name: 'NotFoundError',
        message: 'access policy "bad": server workload "ghost" does not exist',
      },
    );
    assert.deepEqual(await snapshot(s), before);
    await assert.rejects(
      s.access.importDocument({
        serverWorkloads: [workload('x'), workload('x')],
        credentialProviders: [],
        accessPolicies: [],
      }),
      { name: 'InvalidArgumentError' },
    );
    assert.deepEqual(await snapshot(s), before);
  },

  'importDocument of many objects in one transaction': async (s) => {
    const n = 1500;
    const names = Array.from({ length: n }, (_, i) => `w${String(i).padStart(5, '0')}`);
    await s.access.importDocument({
      serverWorkloads: names.map((w) => workload(w)),
      credentialProviders: [provider('db-password')],
      accessPolicies: names.map((w) => policy(`p-${w}`, { server: w })),
    });
    assert.equal((await s.access.listServerWorkloads()).length, n);
    assert.equal((await s.access.listAccessPolicies()).length, n);
    assert.equal((await s.access.listAccessPolicies({ server: 'w00007' })).length, 1);
  },

  'concurrent policy creates and server workload deletes never leave a dangling reference': async (
    s,
  ) => {
    for (let round = 0; round < 8; round++) {
      const w = `w${round}`;
      await s.access.createServerWorkload(workload(w));
      await s.access.createCredentialProvider(provider(`c${round}`));
      const results = await Promise.allSettled([
        s.access.createAccessPolicy(
          policy(`p${round}`, { server: w, credentialProvider: `c${round}` }),
        ),
        s.access.deleteServerWorkload(w),
        s.access.deleteCredentialProvider(`c${round}`),
      ]);
      for (const r of results) {
        if (r.status === 'rejected')
          assert.ok(
            ['NotFoundError', 'FailedPreconditionError'].includes((r.reason as Error).name),
            String(r.reason),
          );
      }
      const p = await s.access.getAccessPolicy(`p${round}`);
      if (p) {
        assert.notEqual(await s.access.getServerWorkload(w), null, `round ${round}: workload`);
        assert.notEqual(await s.access.getCredentialProvider(`c${round}`), null, `round ${round}`);
      }
    }
  },

  'concurrent imports of overlapping documents both succeed': async (s) => {
    const names = Array.from({ length: 40 }, (_, i) => `w${String(i).padStart(3, '0')}`);
    const doc = (order: string[], port: number) => ({
      serverWorkloads: order.map((n) => workload(n, { port })),
      credentialProviders: [],
      accessPolicies: [],
    });
    await s.access.importDocument(doc(names, 1));
    await Promise.all([
      s.access.importDocument(doc(names, 2)),
      s.access.importDocument(doc([...names].reverse(), 3)),
    ]);
    const ports = new Set((await s.access.listServerWorkloads()).map((w) => w.port));
    assert.equal(ports.size, 1, 'one import replaced everything last');
  },

  'inside a rolled-back transaction nothing is stored': async (s) => {
    await assert.rejects(
      s.transaction(async (tx) => {
        await tx.access.createServerWorkload(workload('db'));
        throw new Error('roll back');
      }),
      /roll back/,
    );
    assert.equal(await s.access.getServerWorkload('db'), null);
  },
};
