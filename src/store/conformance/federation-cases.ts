// Conformance: FederationStore.
import assert from 'node:assert/strict';
import type { Bundle } from '../../core/bundle.ts';
import type { FederationRelationship } from '../../core/federation.ts';
import { initialFederationStatus } from '../../core/federation.ts';
import { type Cases, T0, bytes } from './fixtures.ts';

const rel = (td: string, over: Partial<FederationRelationship> = {}): FederationRelationship => ({
  trustDomain: td,
  bundleEndpointUrl: `https://${td}/bundle`,
  profile: 'https_web',
  endpointSpiffeId: '',
  source: 'api',
  createdAt: T0,
  updatedAt: T0,
  status: initialFederationStatus,
  ...over,
});

export const federationCases: Cases = {
  'create, get, list in trust-domain order; duplicates refused': async (s) => {
    assert.equal(await s.federations.get('b.org'), null);
    const b = rel('b.org', {
      profile: 'https_spiffe',
      endpointSpiffeId: 'spiffe://b.org/spire/server',
      source: 'config',
    });
    assert.deepEqual(await s.federations.create(b), b);
    await s.federations.create(rel('a.org'));
    await s.federations.create(rel('c.org'));
    await assert.rejects(s.federations.create(rel('b.org')), {
      name: 'AlreadyExistsError',
      message: 'a federation relationship with this trust domain already exists',
    });
    assert.deepEqual(await s.federations.get('b.org'), b);
    assert.deepEqual(
      (await s.federations.list(100)).map((r) => r.trustDomain),
      ['a.org', 'b.org', 'c.org'],
    );
    assert.deepEqual(
      (await s.federations.list(2)).map((r) => r.trustDomain),
      ['a.org', 'b.org'],
    );
    await assert.rejects(s.federations.list(0), { name: 'InvalidArgumentError' });
  },

  'update() replaces the parameters and keeps createdAt and the status': async (s) => {
    const status = {
      lastFetchAt: T0 + 5,
      lastSuccessAt: T0 + 4,
      lastError: 'boom',
      nextAttemptAt: T0 + 99_000,
      failures: 3,
    };
    await s.federations.create(rel('a.org', { status }));
    const updated = await s.federations.update({
      trustDomain: 'a.org',
      bundleEndpointUrl: 'https://new.example/b',
      profile: 'https_spiffe',
      endpointSpiffeId: 'spiffe://a.org/x',
      source: 'config',
      updatedAt: T0 + 10,
    });
    const expected = rel('a.org', {
      bundleEndpointUrl: 'https://new.example/b',
      profile: 'https_spiffe',
      endpointSpiffeId: 'spiffe://a.org/x',
      source: 'config',
      updatedAt: T0 + 10,
      status,
    });
    assert.deepEqual(updated, expected);
    assert.deepEqual(await s.federations.get('a.org'), expected);
    await assert.rejects(s.federations.update({ ...expected, trustDomain: 'missing.org' }), {
      name: 'NotFoundError',
    });
  },

  'setStatus() records the fetch outcome; delete() returns the row': async (s) => {
    await s.federations.create(rel('a.org'));
    const status = {
      lastFetchAt: 2 ** 41,
      lastSuccessAt: 0,
      lastError: 'tls: certificate “unknown” ✗',
      nextAttemptAt: 2 ** 41 + 1,
      failures: 7,
    };
    assert.equal(await s.federations.setStatus('a.org', status), true);
    assert.equal(await s.federations.setStatus('missing.org', status), false);
    assert.deepEqual((await s.federations.get('a.org'))?.status, status);
    assert.deepEqual(await s.federations.delete('a.org'), rel('a.org', { status }));
    assert.equal(await s.federations.get('a.org'), null);
    await assert.rejects(s.federations.delete('a.org'), {
      name: 'NotFoundError',
      message: 'federation relationship with "a.org" not found',
    });
  },

  'a relationship change rolls back with its transaction': async (s) => {
    await assert.rejects(
      s.transaction(async (tx) => {
        await tx.federations.create(rel('a.org'));
        throw new Error('abort');
      }),
      /abort/,
    );
    assert.equal(await s.federations.get('a.org'), null);
  },

  'bundles.putIfNotOlder() never replaces a bundle of higher sequence': async (s) => {
    const b = (sequence: number, kid: string): Bundle => ({
      trustDomain: 'other.org',
      x509Authorities: [],
      jwtAuthorities: [{ kid, publicKeyDer: bytes(1, 2), expiresAt: 0, tainted: false }],
      sequence,
      refreshHint: 60,
    });
    assert.equal(await s.bundles.putIfNotOlder(b(5, 'a')), true, 'inserted');
    assert.equal(await s.bundles.putIfNotOlder(b(4, 'b')), false);
    assert.deepEqual(await s.bundles.get('other.org'), b(5, 'a'));
    assert.equal(await s.bundles.putIfNotOlder(b(5, 'c')), true, 'an equal sequence replaces');
    assert.equal(await s.bundles.putIfNotOlder(b(2 ** 40, 'd')), true);
    assert.deepEqual(await s.bundles.get('other.org'), b(2 ** 40, 'd'));
    const results = await Promise.all(
      [7, 9, 8, 2 ** 40 + 3, 1].map((n) => s.bundles.putIfNotOlder(b(n, `k${n}`))),
    );
    assert.equal(results.filter(Boolean).length >= 1, true);
    assert.equal((await s.bundles.get('other.org'))?.sequence, 2 ** 40 + 3);
  },
};
