// The admin side of federation: config relationships applied at start and how they coexist with
// API ones, manual bundles, audit records and the onBundleUpdated hook.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { ManualClock } from '../../core/clock.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../../core/caller.ts';
import { FederationManager } from './federation-manager.ts';
import { type ConfigRelationship, FederationService } from './federation-service.ts';
import { type ForeignDomain, bundleJson, foreignDomain } from './testing/bundle-endpoint.ts';
import { createTempDatabase } from '../../../test/helpers/postgres.ts';

const NOW = Date.UTC(2030, 0, 1);
const admin: RequestContext = { caller: { kind: 'local-admin' }, correlationId: 'c1' };
let dir = '';
let n = 0;
let store: Store;
let clock: ManualClock;
let svc: FederationService;
let updated: string[];
let a: ForeignDomain;
let b: ForeignDomain;
let b2: ForeignDomain;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tessera-fedsvc-'));
  a = await foreignDomain('a.test', NOW);
  b = await foreignDomain('b.test', NOW);
  b2 = await foreignDomain('b.test', NOW);
});
after(() => rm(dir, { recursive: true, force: true }));
beforeEach(async () => {
  clock = new ManualClock(NOW);
  store = await openStore({ kind: 'sqlite', path: path.join(dir, `s${n++}.db`) }, clock);
  const auditor = new Auditor(clock, store);
  const manager = new FederationManager({
    store,
    auditor,
    clock,
    log: { warn: () => {}, info: () => {} },
  });
  updated = [];
  manager.onBundleUpdated((td) => updated.push(td));
  svc = new FederationService({ store, auditor, clock, trustDomain: 'example.org', manager });
});
afterEach(() => store.close());

const web = (td: string, over: Partial<ConfigRelationship> = {}): ConfigRelationship => ({
  trustDomain: td,
  bundleEndpointUrl: `https://${td}/bundle`,
  profile: 'https_web',
  endpointSpiffeId: '',
  trustBundle: '',
  trustBundleFile: '',
  ...over,
});

async function actions(): Promise<string[]> {
  return (await store.audit.list({}, 100)).map((r) => `${r.action} ${r.target}`);
}

describe('config relationships', () => {
  it('are created with source "config", seeded with their trust bundle, and left alone by the API', async () => {
    await svc.applyConfig([
      web('a.test'),
      web('b.test', {
        profile: 'https_spiffe',
        endpointSpiffeId: 'spiffe://b.test/spire/server',
        trustBundle: b.caPem,
        trustBundleFile: '/etc/b.pem',
      }),
    ]);
    const rels = await svc.list();
    assert.deepEqual(
      rels.map((r) => [r.trustDomain, r.source, r.profile]),
      [
        ['a.test', 'config', 'https_web'],
        ['b.test', 'config', 'https_spiffe'],
      ],
    );
    assert.equal((await store.bundles.get('b.test'))?.x509Authorities.length, 1);
    assert.deepEqual(updated, ['b.test']);
    assert.deepEqual(await actions(), ['federation.create a.test', 'federation.create b.test']);
    await assert.rejects(
      svc.update(admin, { ...web('a.test'), bundleEndpointUrl: 'https://x/b' }),
      {
        name: 'FailedPreconditionError',
        message: /comes from the server config/,
      },
    );
    await assert.rejects(svc.delete(admin, 'a.test'), { name: 'FailedPreconditionError' });

    // The same config again changes nothing and audits nothing.
    await svc.applyConfig([
      web('a.test'),
      web('b.test', {
        profile: 'https_spiffe',
        endpointSpiffeId: 'spiffe://b.test/spire/server',
        trustBundle: b2.caPem,
        trustBundleFile: '/etc/b.pem',
      }),
    ]);
    assert.equal((await actions()).length, 2);
    assert.deepEqual(
      (await store.bundles.get('b.test'))?.x509Authorities[0]?.der,
      b.ca.certDer,
      'a stored bundle is not replaced by the config one',
    );
  });

  it('take over an API relationship of the same trust domain; dropped ones are deleted', async () => {
    await svc.create(admin, web('a.test', { bundleEndpointUrl: 'https://api.example/a' }));
    await svc.create(admin, web('c.test'));
    await svc.applyConfig([web('a.test'), web('b.test')]);
    const byTd = new Map((await svc.list()).map((r) => [r.trustDomain, r]));
    assert.equal(byTd.get('a.test')?.source, 'config');
    assert.equal(byTd.get('a.test')?.bundleEndpointUrl, 'https://a.test/bundle');
    assert.equal(byTd.get('c.test')?.source, 'api');
    await svc.applyConfig([web('b.test')]);
    assert.deepEqual(
      (await svc.list()).map((r) => r.trustDomain),
      ['b.test', 'c.test'],
    );
    const last = (await store.audit.tail(1))[0];
    assert.equal(last?.action, 'federation.delete');
    assert.equal(last?.target, 'a.test');
    assert.equal(last?.details.reason, 'no longer in the server config');
  });

  it('are refused with the key path when invalid or when https_spiffe has no bundle', async () => {
    await assert.rejects(svc.applyConfig([web('a.test'), web('b.test', { profile: 'ftp' })]), {
      message: /^config: federation\.relationships\[1\]: profile: must be/,
    });
    await assert.rejects(
      svc.applyConfig([
        web('b.test', { profile: 'https_spiffe', endpointSpiffeId: 'spiffe://b.test/x' }),
      ]),
      { message: /"b\.test": trust_bundle: required for https_spiffe.*set trust_bundle_file/ },
    );
    assert.deepEqual(await svc.list(), [], 'nothing applied');
  });
});

describe('API relationships and bundles', () => {
  it('validates, audits and notifies', async () => {
    await assert.rejects(
      svc.create(
        admin,
        web('b.test', { profile: 'https_spiffe', endpointSpiffeId: 'spiffe://a.test/x' }),
      ),
      { message: /endpoint_spiffe_id: "spiffe:\/\/a\.test\/x" is not in trust domain "b\.test"/ },
    );
    await assert.rejects(svc.create(admin, web('a.test', { trustBundle: b.caPem })), {
      message: /trust_bundle: X\.509 authority #1 belongs to trust domain "b\.test"/,
    });
    const r = await svc.create(admin, web('a.test', { trustBundle: bundleJson(a.bundle(9)) }));
    assert.equal(r.source, 'api');
    assert.equal((await store.bundles.get('a.test'))?.sequence, 9);
    assert.deepEqual(updated, ['a.test']);
    await store.federations.setStatus('a.test', {
      ...r.status,
      failures: 5,
      nextAttemptAt: NOW + 1e6,
    });
    clock.advance(1000);
    const u = await svc.update(admin, web('a.test', { bundleEndpointUrl: 'https://a2.test/b' }));
    assert.equal(u.updatedAt, NOW + 1000);
    assert.equal(u.createdAt, NOW);
    assert.equal(u.status.failures, 0, 'new parameters restart the schedule');
    assert.equal((await store.federations.get('a.test'))?.status.nextAttemptAt, 0);
    await svc.setBundle(admin, 'a.test', a.caPem);
    assert.equal(
      (await store.bundles.get('a.test'))?.sequence,
      0,
      'an operator set is not sequence-checked',
    );
    await assert.rejects(svc.setBundle(admin, 'example.org', a.caPem), {
      message: /own trust domain/,
    });
    await assert.rejects(svc.deleteBundle(admin, 'example.org'), { message: /own trust domain/ });
    await svc.deleteBundle(admin, 'a.test');
    await assert.rejects(svc.deleteBundle(admin, 'a.test'), { name: 'NotFoundError' });
    assert.deepEqual(updated, ['a.test', 'a.test', 'a.test']);
    await svc.delete(admin, 'a.test');
    assert.deepEqual(await actions(), [
      'federation.create a.test',
      'federation.update a.test',
      'federation.bundle.set a.test',
      'federation.bundle.delete a.test',
      'federation.delete a.test',
    ]);
  });
});

describe('https_spiffe bundles', () => {
  it('cannot be emptied of X.509 authorities or deleted while the relationship needs them', async () => {
    await svc.create(
      admin,
      web('b.test', {
        profile: 'https_spiffe',
        endpointSpiffeId: 'spiffe://b.test/spire/server',
        trustBundle: b.caPem,
      }),
    );
    await assert.rejects(svc.setBundle(admin, 'b.test', '{"keys": []}'), {
      name: 'FailedPreconditionError',
      message: /it needs an X\.509 authority/,
    });
    await assert.rejects(svc.deleteBundle(admin, 'b.test'), {
      name: 'FailedPreconditionError',
      message: /delete the federation relationship first/,
    });
    await svc.setBundle(admin, 'b.test', bundleJson(b2.bundle(3)));
    assert.equal((await store.bundles.get('b.test'))?.sequence, 3);
  });
});

describe('several servers on one PostgreSQL', () => {
  it('apply the same config at the same moment without failing', async () => {
    const db = await createTempDatabase('tessera_fed');
    const stores: Store[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        stores.push(await openStore({ kind: 'postgres', url: db.url, poolSize: 2 }, clock));
      }
      const services = stores.map((st) => {
        const auditor = new Auditor(clock, st);
        const manager = new FederationManager({
          store: st,
          auditor,
          clock,
          log: { warn: () => {}, info: () => {} },
        });
        return new FederationService({
          store: st,
          auditor,
          clock,
          trustDomain: 'example.org',
          manager,
        });
      });
      const config = [web('a.test'), web('b.test'), web('c.test')];
      await Promise.all(services.map((svc) => svc.applyConfig(config)));
      const first = stores[0]!;
      assert.deepEqual(
        (await first.federations.list(10)).map((r) => `${r.trustDomain} ${r.source}`),
        ['a.test config', 'b.test config', 'c.test config'],
      );
      const creates = await first.audit.list({ action: 'federation.create' }, 100);
      assert.equal(creates.length, 3, 'each relationship created (and audited) once');
    } finally {
      await Promise.all(stores.map((st) => st.close()));
      await db.drop();
    }
  });
});
