import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Bundle, emptyBundle } from '../../core/bundle.ts';
import { ManualClock } from '../../core/clock.ts';
import { T0 } from '../../store/conformance/fixtures.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import { type FederatedBundleChange, FederatedBundleCache } from './federated-bundle-cache.ts';

let dir = '';
let n = 0;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tessera-fedcache-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function withStore(fn: (store: Store) => Promise<void>): Promise<void> {
  const store = await openStore(
    { kind: 'sqlite', path: path.join(dir, `db${n++}.sqlite3`) },
    new ManualClock(T0),
  );
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

function fed(td: string, sequence: number, kid = 'k1'): Bundle {
  return {
    ...emptyBundle(td),
    sequence,
    jwtAuthorities: [
      { kid, publicKeyDer: new Uint8Array([1, 2, 3]), expiresAt: 0, tainted: false },
    ],
  };
}

describe('FederatedBundleCache', () => {
  it('holds every bundle but the own trust domain, and reports additions', async () => {
    await withStore(async (store) => {
      await store.bundles.put(fed('example.org', 3));
      await store.bundles.put(fed('partner.test', 1));
      await store.bundles.put(fed('other.test', 7));
      const cache = new FederatedBundleCache(store, 'example.org');
      const seen: FederatedBundleChange[] = [];
      cache.onChange((c) => seen.push(c));
      const c = await cache.refresh();
      assert.deepEqual([...c.changed].sort(), ['other.test', 'partner.test']);
      assert.deepEqual(c.removed, []);
      assert.deepEqual([...cache.bundles.keys()].sort(), ['other.test', 'partner.test']);
      assert.equal(cache.get('example.org'), undefined);
      assert.equal(cache.get('partner.test')?.sequence, 1);
      assert.equal(seen.length, 1);
    });
  });

  it('is quiet when nothing changed and keeps the same bundle objects', async () => {
    await withStore(async (store) => {
      await store.bundles.put(fed('partner.test', 1));
      const cache = new FederatedBundleCache(store, 'example.org');
      await cache.refresh();
      const before = cache.get('partner.test');
      let calls = 0;
      cache.onChange(() => calls++);
      const c = await cache.refresh();
      assert.deepEqual(c, { changed: [], removed: [] });
      assert.equal(calls, 0);
      assert.equal(cache.get('partner.test'), before);
    });
  });

  it('detects a new sequence, new content under the same sequence, and deletions', async () => {
    await withStore(async (store) => {
      await store.bundles.put(fed('partner.test', 1));
      await store.bundles.put(fed('other.test', 1));
      const cache = new FederatedBundleCache(store, 'example.org');
      await cache.refresh();
      const seen: FederatedBundleChange[] = [];
      cache.onChange((c) => seen.push(c));

      await store.bundles.put(fed('partner.test', 2));
      assert.deepEqual(await cache.refresh(), { changed: ['partner.test'], removed: [] });
      assert.equal(cache.get('partner.test')?.sequence, 2);

      // A remote that changed keys without bumping its sequence is still noticed.
      await store.bundles.put(fed('partner.test', 2, 'k2'));
      assert.deepEqual(await cache.refresh(), { changed: ['partner.test'], removed: [] });
      assert.equal(cache.get('partner.test')?.jwtAuthorities[0]?.kid, 'k2');

      assert.equal(await store.bundles.delete('other.test'), true);
      assert.deepEqual(await cache.refresh(), { changed: [], removed: ['other.test'] });
      assert.equal(cache.get('other.test'), undefined);
      assert.equal(seen.length, 3);
    });
  });

  it('an own-bundle change is not a federated change', async () => {
    await withStore(async (store) => {
      const cache = new FederatedBundleCache(store, 'example.org');
      await cache.refresh();
      await store.bundles.put(fed('example.org', 9));
      assert.deepEqual(await cache.refresh(), { changed: [], removed: [] });
      assert.equal(cache.bundles.size, 0);
    });
  });

  it('a refresh asked for while one runs runs again and sees what was stored meanwhile', async () => {
    await withStore(async (store) => {
      let release = () => {};
      const gate = new Promise<void>((r) => (release = r));
      let lists = 0;
      const slow = {
        ...store,
        bundles: {
          ...store.bundles,
          list: async () => {
            lists++;
            const read = await store.bundles.list();
            if (lists === 1) await gate;
            return read;
          },
        },
      } as Store;
      const cache = new FederatedBundleCache(slow, 'example.org');
      const first = cache.refresh();
      await store.bundles.put(fed('partner.test', 1));
      const second = cache.refresh();
      const third = cache.refresh();
      release();
      assert.deepEqual(await first, { changed: [], removed: [] }, 'read before the put');
      assert.equal(await second, await third, 'callers waiting for the next refresh share it');
      assert.deepEqual(await second, { changed: ['partner.test'], removed: [] });
      assert.equal(lists, 2);
    });
  });

  it('a failing store read rejects, keeps the last view, and the next refresh recovers', async () => {
    await withStore(async (store) => {
      let down = false;
      const flaky = {
        ...store,
        bundles: {
          ...store.bundles,
          list: () => (down ? Promise.reject(new Error('database down')) : store.bundles.list()),
        },
      } as Store;
      await store.bundles.put(fed('partner.test', 1));
      const cache = new FederatedBundleCache(flaky, 'example.org');
      await cache.refresh();
      down = true;
      await store.bundles.delete('partner.test');
      await assert.rejects(cache.refresh(), /database down/);
      assert.equal(cache.get('partner.test')?.sequence, 1, 'an outage is not a deletion');
      down = false;
      assert.deepEqual(await cache.refresh(), { changed: [], removed: ['partner.test'] });
    });
  });
});
