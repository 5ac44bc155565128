import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { createContextValues, createHandlerContext } from '@connectrpc/connect';
import { type Bundle, emptyBundle } from '../../core/bundle.ts';
import { ManualClock } from '../../core/clock.ts';
import type { Entry } from '../../core/entry.ts';
import { T0, makeEntry, makeNode } from '../../store/conformance/fixtures.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import {
  GetAuthorizedEntriesRequestSchema,
  SyncAuthorizedEntriesRequestSchema,
  SyncService,
} from '../../../proto/gen/tessera/v1/sync_pb.js';
import type { BundleCache } from '../authority/bundle-cache.ts';
import { FederatedBundleCache } from '../authority/federated-bundle-cache.ts';
import { EntryIndex } from '../registration/entry-index.ts';
import type { SvidService } from '../svid/svid-service.ts';
import { requestKey } from '../api/context-keys.ts';
import { FederatedBundlesSent, federatedBundlesFor } from './federated-sync.ts';
import { syncHandlers } from '../api/handlers/sync-handlers.ts';

function fed(td: string, sequence: number): Bundle {
  return {
    ...emptyBundle(td),
    sequence,
    jwtAuthorities: [
      {
        kid: `k${sequence}`,
        publicKeyDer: new Uint8Array([sequence]),
        expiresAt: 0,
        tainted: false,
      },
    ],
  };
}

const view = (...bs: Bundle[]) => {
  const m = new Map(bs.map((b) => [b.trustDomain, b]));
  return { get: (td: string) => m.get(td) };
};

describe('federatedBundlesFor', () => {
  it('only the trust domains the entries federate with, and only those the server holds', () => {
    const entries = [
      makeEntry(1, { federatesWith: ['a.test', 'b.test'] }),
      makeEntry(2, { federatesWith: ['b.test', 'missing.test'] }),
      makeEntry(3, { federatesWith: [] }),
    ];
    const got = federatedBundlesFor(
      entries,
      view(fed('a.test', 1), fed('b.test', 1), fed('c.test', 1)),
    );
    assert.deepEqual([...got.keys()].sort(), ['a.test', 'b.test']);
    assert.equal(federatedBundlesFor([], view(fed('a.test', 1))).size, 0);
  });
});

describe('FederatedBundlesSent', () => {
  it('sends everything first, then only changes and removals', () => {
    const sent = new FederatedBundlesSent();
    const a1 = fed('a.test', 1);
    const b1 = fed('b.test', 1);
    let d = sent.next(
      new Map([
        ['a.test', a1],
        ['b.test', b1],
      ]),
    );
    assert.deepEqual(d.upserted.map((b) => b.trustDomain).sort(), ['a.test', 'b.test']);
    assert.deepEqual(d.removed, []);

    d = sent.next(
      new Map([
        ['a.test', a1],
        ['b.test', b1],
      ]),
    );
    assert.deepEqual(d, { upserted: [], removed: [] }, 'nothing changed');

    // An equal copy (a re-read that found the same content) is not a change.
    d = sent.next(
      new Map([
        ['a.test', { ...a1 }],
        ['b.test', b1],
      ]),
    );
    assert.deepEqual(d, { upserted: [], removed: [] });

    const a2 = fed('a.test', 2);
    d = sent.next(new Map([['a.test', a2]]));
    assert.deepEqual(d.upserted, [a2]);
    assert.deepEqual(d.removed, ['b.test']);

    d = sent.next(
      new Map([
        ['a.test', a2],
        ['b.test', b1],
      ]),
    );
    assert.deepEqual(d.upserted, [b1], 'a trust domain federated with again is sent again');
    assert.deepEqual(d.removed, []);
  });
});

// --- the SyncAuthorizedEntries stream ----------------------------------------------------------

const AGENT = 'spiffe://example.org/spire/agent/join_token/a';
const SERVER = 'spiffe://example.org/spire/server';

let dir = '';
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tessera-fedsync-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Harness {
  handlers: ReturnType<typeof syncHandlers>;
  ctx: ReturnType<typeof createHandlerContext>;
  store: Store;
  index: EntryIndex;
  federated: FederatedBundleCache;
  stream: AsyncIterator<Record<string, unknown>>;
  next(ms?: number): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

async function harness(): Promise<Harness> {
  const store = await openStore(
    { kind: 'sqlite', path: path.join(dir, `db-${Math.random()}.sqlite3`) },
    new ManualClock(T0),
  );
  const index = new EntryIndex(SERVER);
  const federated = new FederatedBundleCache(store, 'example.org');
  const svids = {
    authorizedEntries: () => index.authorizedFor(AGENT, new Set(), T0),
  } as unknown as SvidService;
  const own = {
    bundle: emptyBundle('example.org'),
    onChange: () => () => {},
  } as unknown as BundleCache;
  const handlers = syncHandlers(svids, index, own, federated, store.nodes);
  const ctx = createHandlerContext({
    service: SyncService,
    method: SyncService.method.syncAuthorizedEntries,
    protocolName: 'connect',
    requestMethod: 'POST',
    url: 'https://server/tessera.v1.SyncService/SyncAuthorizedEntries',
    contextValues: createContextValues().set(requestKey, {
      caller: {
        kind: 'agent',
        spiffeId: AGENT,
        node: makeNode(1, { spiffeId: AGENT }),
        serial: '1',
      },
      correlationId: 'test',
    }),
  });
  const iterable = handlers.syncAuthorizedEntries!(
    create(SyncAuthorizedEntriesRequestSchema, {}),
    ctx,
  ) as AsyncIterable<Record<string, unknown>>;
  const stream = iterable[Symbol.asyncIterator]();
  return {
    handlers,
    ctx,
    store,
    index,
    federated,
    stream,
    async next(ms = 2000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no sync message within ${ms} ms`)), ms);
      });
      try {
        const r = await Promise.race([stream.next(), timeout]);
        assert.equal(r.done, false);
        return r.value;
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      ctx.abort();
      await stream.return?.();
      await store.close();
    },
  };
}

const tds = (msg: Record<string, unknown>) =>
  ((msg.federatedBundles ?? []) as { trustDomain: string }[]).map((b) => b.trustDomain).sort();

function upsert(index: EntryIndex, e: Entry): void {
  index.upsert(e);
  index.notify([e.id]);
}

describe('SyncAuthorizedEntries: federated bundles', () => {
  it('initial set, then a change, a new federation, and removals reach the stream', async () => {
    const h = await harness();
    try {
      await h.store.bundles.put(fed('a.test', 1));
      await h.store.bundles.put(fed('b.test', 1));
      await h.store.bundles.put(fed('unrelated.test', 1));
      await h.federated.refresh();
      upsert(h.index, makeEntry(1, { parentId: AGENT, federatesWith: ['a.test'] }));

      const first = await h.next();
      assert.equal(first.initial, true);
      assert.deepEqual(tds(first), ['a.test'], 'never a bundle no entry federates with');
      assert.deepEqual(first.federatedBundlesRemoved, []);

      // A change of a federated bundle the agent needs.
      await h.store.bundles.put(fed('a.test', 2));
      await h.federated.refresh();
      const changed = await h.next();
      assert.deepEqual(tds(changed), ['a.test']);
      assert.equal(
        (changed.federatedBundles as { sequence: bigint }[])[0]?.sequence,
        2n,
        'the new content',
      );
      assert.deepEqual(changed.upserted, []);

      // A change of one it does not need wakes nothing.
      await h.store.bundles.put(fed('unrelated.test', 2));
      await h.federated.refresh();

      // An entry that federates with one more trust domain.
      upsert(h.index, makeEntry(2, { parentId: AGENT, federatesWith: ['b.test'] }));
      const more = await h.next();
      assert.equal((more.upserted as unknown[]).length, 1);
      assert.deepEqual(tds(more), ['b.test']);

      // The bundle deleted on the server.
      await h.store.bundles.delete('b.test');
      await h.federated.refresh();
      const gone = await h.next();
      assert.deepEqual(tds(gone), []);
      assert.deepEqual(gone.federatedBundlesRemoved, ['b.test']);

      // The entry no longer federating: removed too.
      upsert(h.index, makeEntry(1, { parentId: AGENT, federatesWith: [], revision: 1 }));
      const dropped = await h.next();
      assert.deepEqual(dropped.federatedBundlesRemoved, ['a.test']);
    } finally {
      await h.close();
    }
  });

  it('GetAuthorizedEntries returns the federated bundles of its entries, and only those', async () => {
    const h = await harness();
    try {
      await h.store.bundles.put(fed('a.test', 3));
      await h.store.bundles.put(fed('unrelated.test', 1));
      await h.federated.refresh();
      upsert(h.index, makeEntry(1, { parentId: AGENT, federatesWith: ['a.test', 'missing.test'] }));
      const r = (await h.handlers.getAuthorizedEntries!(
        create(GetAuthorizedEntriesRequestSchema, {}),
        h.ctx,
      )) as { federatedBundles: { trustDomain: string; sequence: bigint }[] };
      assert.deepEqual(
        r.federatedBundles.map((b) => [b.trustDomain, b.sequence]),
        [['a.test', 3n]],
      );
    } finally {
      await h.close();
    }
  });
});
