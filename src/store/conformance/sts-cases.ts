// Conformance: StsStore — issuers and trust policies, uniqueness, referential guard, ordering,
// the revision counter, transactions.
import assert from 'node:assert/strict';
import type { StsIssuerRecord, TrustPolicyRecord } from '../types.ts';
import { type Cases, T0 } from './fixtures.ts';

const ISS = 'https://token.actions.githubusercontent.com';

export function makeStsIssuer(over: Partial<StsIssuerRecord> = {}): StsIssuerRecord {
  return {
    issuer: ISS,
    audiences: ['https://github.com/octo-org', 'sts.example.org'],
    keySource: 'jwks',
    jwks: '{"keys":[{"kty":"EC","crv":"P-256","x":"x","y":"y","kid":"k1"}]}',
    createdAt: T0,
    updatedAt: T0,
    ...over,
  };
}

export function makeTrustPolicy(
  name: string,
  over: Partial<TrustPolicyRecord> = {},
): TrustPolicyRecord {
  return {
    name,
    issuer: ISS,
    condition: 'assertion.repository_owner == "octo-org"',
    attributeMapping: { subject: 'assertion.sub', repository: 'assertion.repository' },
    spiffeId: 'spiffe://example.org/ci/github/{repository*}',
    accessTokenAudience: '',
    accessTokenScopes: [],
    accessTokenRequireDpop: false,
    introspectionClient: false,
    ttl: '15m',
    template: '',
    createdAt: T0,
    updatedAt: T0,
    ...over,
  };
}

export const stsCases: Cases = {
  'issuers: add, get, list in order, remove; revision moves on every change': async (s) => {
    assert.equal(await s.sts.revision(), 0);
    assert.deepEqual(await s.sts.listIssuers(), []);
    const a = makeStsIssuer();
    const b = makeStsIssuer({
      issuer: 'https://gitlab.example.com',
      keySource: 'discovery',
      jwks: '',
      audiences: ['tessera'],
    });
    assert.deepEqual(await s.sts.addIssuer(b), b);
    await s.sts.addIssuer(a);
    assert.equal(await s.sts.revision(), 2);
    assert.deepEqual(await s.sts.getIssuer(ISS), a);
    assert.equal(await s.sts.getIssuer(ISS + '/'), null, 'exact match only');
    assert.deepEqual(
      (await s.sts.listIssuers()).map((i) => i.issuer),
      ['https://gitlab.example.com', ISS],
    );
    assert.deepEqual(await s.sts.removeIssuer(b.issuer), b);
    assert.equal(await s.sts.revision(), 3);
    assert.equal(await s.sts.getIssuer(b.issuer), null);
    await assert.rejects(s.sts.removeIssuer(b.issuer), { code: 'not_found' });
    assert.equal(await s.sts.revision(), 3, 'a failed change does not bump');
  },

  'issuers: a second add of the same URL is AlreadyExists and changes nothing': async (s) => {
    await s.sts.addIssuer(makeStsIssuer());
    await assert.rejects(s.sts.addIssuer(makeStsIssuer({ audiences: ['other'] })), {
      code: 'already_exists',
      message: /already registered/,
    });
    assert.deepEqual((await s.sts.getIssuer(ISS))?.audiences, [
      'https://github.com/octo-org',
      'sts.example.org',
    ]);
    assert.equal(await s.sts.revision(), 1);
  },

  'policies: create, get, list by creation time then name, delete': async (s) => {
    const p2 = makeTrustPolicy('b-policy', { createdAt: T0 + 1 });
    const p1 = makeTrustPolicy('z-policy', { createdAt: T0 });
    const p3 = makeTrustPolicy('a-policy', {
      createdAt: T0 + 1,
      spiffeId: '',
      accessTokenAudience: 'https://api.example.org',
      accessTokenScopes: ['read', 'write'],
      accessTokenRequireDpop: true,
      introspectionClient: true,
      template: 'github',
      ttl: '10m',
    });
    for (const p of [p2, p1, p3]) assert.deepEqual(await s.sts.createPolicy(p), p);
    assert.deepEqual(await s.sts.getPolicy('a-policy'), p3);
    assert.equal(await s.sts.getPolicy('A-POLICY'), null);
    assert.deepEqual(
      (await s.sts.listPolicies()).map((p) => p.name),
      ['z-policy', 'a-policy', 'b-policy'],
    );
    assert.deepEqual(await s.sts.deletePolicy('z-policy'), p1);
    await assert.rejects(s.sts.deletePolicy('z-policy'), { code: 'not_found' });
    assert.equal(await s.sts.revision(), 4);
  },

  'policies: names are unique, also under concurrent creates': async (s) => {
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) =>
        s.sts.createPolicy(makeTrustPolicy('dup', { condition: `${i} == ${i}` })),
      ),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results)
      if (r.status === 'rejected')
        assert.equal((r.reason as { code: string }).code, 'already_exists');
    assert.equal((await s.sts.listPolicies()).length, 1);
    assert.equal(await s.sts.revision(), 1);
  },

  'an issuer used by policies cannot be removed': async (s) => {
    await s.sts.addIssuer(makeStsIssuer());
    await s.sts.createPolicy(makeTrustPolicy('p1'));
    await s.sts.createPolicy(makeTrustPolicy('p2'));
    await assert.rejects(s.sts.removeIssuer(ISS), {
      code: 'failed_precondition',
      message: /"p1", "p2"/,
    });
    assert.ok(await s.sts.getIssuer(ISS));
    await s.sts.deletePolicy('p1');
    await s.sts.deletePolicy('p2');
    await s.sts.removeIssuer(ISS);
    assert.equal(await s.sts.getIssuer(ISS), null);
  },

  'changes inside a transaction roll back with it, revision included': async (s) => {
    await assert.rejects(
      s.transaction(async (tx) => {
        await tx.sts.addIssuer(makeStsIssuer());
        await tx.sts.createPolicy(makeTrustPolicy('p'));
        assert.equal(await tx.sts.revision(), 2);
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(await s.sts.getIssuer(ISS), null);
    assert.equal(await s.sts.getPolicy('p'), null);
    assert.equal(await s.sts.revision(), 0);
  },
};
