// Two servers sharing one datastore (two store handles, two registries): a change through one
// server's admin API is in effect there at once and on the other after its next poll. Also the
// precedence rules: config wins over clashing datastore records; unusable records are ignored.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Clock } from '../../core/clock.ts';
import { openStore, type StoreOptions } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import { makeTrustPolicy } from '../../store/conformance/sts-cases.ts';
import { createTempDatabase, type TempDatabase } from '../../../test/helpers/postgres.ts';
import { testIssuer } from '../../../test/helpers/test-oidc-issuer.ts';
import { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../../core/caller.ts';
import { StsAdmin } from './admin.ts';
import { DEFAULT_DISCOVERY } from './discovery.ts';
import { readJwksFiles } from '../compose/files.ts';
import { StsRegistry, type RegistryConfig } from './registry.ts';

const systemClock: Clock = { now: () => Date.now() };
const ctx: RequestContext = { caller: { kind: 'local-admin' }, correlationId: 'c-1' };
const CFG_ISSUER = 'https://config.example.com';

function variants(): [string, () => Promise<{ options: StoreOptions; drop(): Promise<void> }>][] {
  return [
    [
      'sqlite',
      async () => {
        const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-registry-'));
        return {
          options: { kind: 'sqlite', path: path.join(dir, 'db.sqlite3') },
          drop: async () => rmSync(dir, { recursive: true, force: true }),
        };
      },
    ],
    [
      'postgres',
      async () => {
        const db: TempDatabase = await createTempDatabase('tessera_sts_reg');
        return { options: { kind: 'postgres', url: db.url }, drop: () => db.drop() };
      },
    ],
  ];
}

for (const [name, open] of variants()) {
  describe(`STS registry over ${name}: two servers, one datastore`, () => {
    let drop: () => Promise<void>;
    let storeA: Store;
    let storeB: Store;
    let a: { registry: StsRegistry; admin: StsAdmin };
    let b: { registry: StsRegistry; admin: StsAdmin };
    const warnings: string[] = [];
    const issuerKeys = testIssuer();
    const jwks = JSON.stringify({
      keys: [{ ...issuerKeys.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'ES256' }],
    });
    const config: RegistryConfig = {
      issuers: [{ issuer: CFG_ISSUER, jwks_file: issuerKeys.jwksFile, audiences: ['cfg'] }],
      policies: [
        {
          name: 'cfg-policy',
          issuer: CFG_ISSUER,
          condition: 'true',
          attribute_mapping: { subject: 'assertion.sub' },
          spiffe_id: 'spiffe://example.org/cfg',
        },
      ],
      max_ttl: 3_600_000,
    };
    const server = async (store: Store, c: RegistryConfig = config) => {
      const registry = await StsRegistry.create({
        config: c,
        trustDomain: 'example.org',
        store,
        clock: systemClock,
        discovery: DEFAULT_DISCOVERY,
        jwksFiles: readJwksFiles(c.issuers),
        warn: (msg) => warnings.push(msg),
      });
      const admin = new StsAdmin({
        exchangeServed: true,
        store,
        auditor: new Auditor(systemClock, store),
        clock: systemClock,
        registry,
        trustDomain: 'example.org',
      });
      return { registry, admin };
    };

    before(async () => {
      const v = await open();
      drop = v.drop;
      storeA = await openStore(v.options);
      storeB = await openStore(v.options);
      a = await server(storeA);
      b = await server(storeB);
    });
    after(async () => {
      await storeA?.close();
      await storeB?.close();
      await drop?.();
    });

    it('a change is in effect on its server at once and on the other after a poll', async () => {
      await a.admin.addIssuer(ctx, {
        issuer: 'https://ci.example.com',
        audiences: ['sts'],
        jwks,
      });
      await a.admin.createPolicy(ctx, {
        document: {
          name: 'ci',
          issuer: 'https://ci.example.com',
          condition: 'assertion.sub == "x"',
          attribute_mapping: { subject: 'assertion.sub' },
          spiffe_id: 'spiffe://example.org/ci',
        },
      });
      assert.ok(a.registry.trustedIssuers.get('https://ci.example.com'));
      assert.deepEqual(
        a.registry.apiPoliciesFor('https://ci.example.com').map((p) => p.name),
        ['ci'],
      );
      assert.equal(b.registry.trustedIssuers.get('https://ci.example.com'), undefined);
      await b.registry.poll();
      assert.deepEqual(
        b.registry.apiPoliciesFor('https://ci.example.com').map((p) => p.name),
        ['ci'],
      );
      assert.deepEqual(
        [...(b.registry.trustedIssuers.get('https://ci.example.com')?.keys.keys() ?? [])],
        ['k1'],
      );

      await b.admin.deletePolicy(ctx, 'ci');
      assert.deepEqual(b.registry.apiPoliciesFor('https://ci.example.com'), []);
      assert.equal(a.registry.apiPoliciesFor('https://ci.example.com').length, 1);
      await a.registry.poll();
      assert.deepEqual(a.registry.apiPoliciesFor('https://ci.example.com'), []);
      await a.admin.removeIssuer(ctx, 'https://ci.example.com');
      await b.registry.poll();
      assert.equal(b.registry.trustedIssuers.get('https://ci.example.com'), undefined);
      // Every change was audited in its transaction.
      const actions = (await storeA.audit.list({}, 100)).map((r) => `${r.action} ${r.target}`);
      assert.deepEqual(actions, [
        'sts.issuer.add https://ci.example.com',
        'sts.policy.create ci',
        'sts.policy.delete ci',
        'sts.issuer.remove https://ci.example.com',
      ]);
    });

    it('datastore records clashing with the config, orphaned, or no longer compiling are ignored', async () => {
      warnings.length = 0;
      // Written straight to the datastore, as another server with another config could have.
      await storeA.sts.createPolicy(makeTrustPolicy('cfg-policy', { issuer: CFG_ISSUER }));
      await storeA.sts.createPolicy(
        makeTrustPolicy('orphan', { issuer: 'https://unregistered.example.com' }),
      );
      await storeA.sts.createPolicy(
        makeTrustPolicy('long-ttl', {
          issuer: CFG_ISSUER,
          ttl: '50m',
          attributeMapping: { subject: 'assertion.sub' },
          spiffeId: 'spiffe://example.org/long',
        }),
      );
      await a.registry.poll();
      assert.deepEqual(
        a.registry.policies().map((p) => `${p.source}:${p.compiled.name}`),
        ['config:cfg-policy', 'api:long-ttl'],
      );
      assert.equal(a.registry.policy('cfg-policy')?.compiled.condition.source, 'true');
      assert.deepEqual(
        a.registry.apiPoliciesFor(CFG_ISSUER).map((p) => p.name),
        ['long-ttl'],
      );
      // A server whose max_ttl is lower cannot compile "long-ttl" and ignores it.
      const strict = await server(storeB, { ...config, max_ttl: 1_800_000 });
      assert.deepEqual(strict.registry.apiPoliciesFor(CFG_ISSUER), []);
      assert.ok(warnings.some((w) => /config wins/.test(w)));
      assert.ok(warnings.some((w) => /unregistered issuer/.test(w)));
      assert.ok(warnings.some((w) => /no longer compiles/.test(w)));
      for (const n of ['cfg-policy', 'orphan', 'long-ttl']) await storeA.sts.deletePolicy(n);
    });
  });
}
