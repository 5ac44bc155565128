// Conformance: BundleStore.
import assert from 'node:assert/strict';
import {
  type Bundle,
  emptyBundle,
  withJwtAuthority,
  withX509Authority,
} from '../../core/bundle.ts';
import { ALL_BYTES, type Cases, T0, bytes } from './fixtures.ts';

const TD = 'example.org';

export const bundleCases: Cases = {
  'mutate() stores changes with a sequence bump, and only on change': async (s) => {
    assert.equal(await s.bundles.get(TD), null);
    const unchanged = await s.bundles.mutate(TD, (b) => b);
    assert.deepEqual(unchanged, emptyBundle(TD));
    assert.equal(await s.bundles.get(TD), null, 'an unchanged missing bundle is not stored');
    const first = await s.bundles.mutate(TD, (b) => withX509Authority(b, ALL_BYTES));
    assert.equal(first.sequence, 1);
    assert.deepEqual(await s.bundles.get(TD), first);
    const same = await s.bundles.mutate(TD, (b) => withX509Authority(b, ALL_BYTES));
    assert.deepEqual(same, first);
    const second = await s.bundles.mutate(TD, (b) =>
      withJwtAuthority(b, { kid: 'k1', publicKeyDer: bytes(0, 255, 1), expiresAt: T0 }),
    );
    assert.equal(second.sequence, 2);
    const stored = (await s.bundles.get(TD)) as Bundle;
    assert.deepEqual(stored, second);
    assert.ok(stored.x509Authorities[0]!.der instanceof Uint8Array);
    assert.deepEqual(stored.jwtAuthorities[0]!.publicKeyDer, bytes(0, 255, 1));
  },

  'mutate() announces the bundles topic after a change commits, not for an unchanged bundle':
    async (s) => {
      const heard: string[] = [];
      const off = s.notifications.subscribe('bundles', (t, source) => heard.push(`${t} ${source}`));
      try {
        await s.bundles.mutate(TD, (b) => b);
        assert.deepEqual(heard, []);
        await s.bundles.mutate(TD, (b) => withX509Authority(b, ALL_BYTES));
        assert.deepEqual(heard, ['bundles local']);
        await s.transaction((tx) => tx.bundles.mutate(TD, (b) => ({ ...b, refreshHint: 7 })));
        assert.deepEqual(heard, ['bundles local', 'bundles local']);
      } finally {
        off();
      }
    },

  'concurrent mutate() calls lose no update': async (s) => {
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        s.bundles.mutate(TD, (b) =>
          withJwtAuthority(b, { kid: `k${i}`, publicKeyDer: bytes(i), expiresAt: T0 + i }),
        ),
      ),
    );
    const b = (await s.bundles.get(TD)) as Bundle;
    assert.equal(b.jwtAuthorities.length, 20);
    assert.equal(b.sequence, 20);
  },

  'put() stores as given; list() and delete()': async (s) => {
    const fed: Bundle = {
      trustDomain: 'other.org',
      x509Authorities: [{ der: ALL_BYTES, tainted: true }],
      jwtAuthorities: [{ kid: 'x', publicKeyDer: ALL_BYTES, expiresAt: 0, tainted: false }],
      sequence: 42,
      refreshHint: 60,
    };
    await s.bundles.put(fed);
    await s.bundles.put({ ...fed, sequence: 43 });
    await s.bundles.mutate(TD, (b) => withX509Authority(b, bytes(1)));
    assert.deepEqual((await s.bundles.get('other.org'))?.sequence, 43);
    assert.deepEqual(
      (await s.bundles.list()).map((b) => b.trustDomain),
      ['example.org', 'other.org'],
    );
    assert.deepEqual(await s.bundles.get('other.org'), { ...fed, sequence: 43 });
    assert.equal(await s.bundles.delete('other.org'), true);
    assert.equal(await s.bundles.delete('other.org'), false);
    assert.equal((await s.bundles.list()).length, 1);
  },
};
