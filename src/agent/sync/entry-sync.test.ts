// EntrySync restored from the persisted state: the first stream declares the restored entries
// as `known` (id → revision), so the server sends only what differs; its initial message decides
// what stays (removed and undeclared entries are dropped, the federated set is replaced).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import type { Entry } from '../../core/entry.ts';
import { MemoryKeyManager } from '../../crypto/keys/memory-key-manager.ts';
import { makeCa } from '../../crypto/x509/testing/ca.ts';
import {
  SyncAuthorizedEntriesResponseSchema,
  type SyncAuthorizedEntriesRequest,
  type SyncAuthorizedEntriesResponse,
} from '../../../proto/gen/tessera/v1/sync_pb.js';
import type { BundleSchema, EntrySchema } from '../../../proto/gen/tessera/v1/types_pb.js';
import { Backoff } from '../../client/workload/backoff.ts';
import type { ServerClients } from '../identity/server-link.ts';
import { EntrySync } from './entry-sync.ts';
import type { SyncState } from './sync-state-file.ts';
import { bundleFromWire } from '../../wire/bundle.ts';
import { entryFromWire } from '../../wire/entry.ts';

const ca = await makeCa('ec-p256', 'partner.test');
const jwtKey = await new MemoryKeyManager().generate('jwt', 'ec-p256');

function wireEntry(id: string, revision: number): MessageInitShape<typeof EntrySchema> {
  return {
    id,
    spiffeId: `spiffe://example.org/${id}`,
    parentId: 'spiffe://example.org/spire/agent/join_token/a',
    selectors: [{ type: 'unix', value: 'uid:1' }],
    revision: BigInt(revision),
    createdAt: 1000n,
  };
}
const domainEntry = (id: string, revision: number): Entry =>
  entryFromWire(
    create(SyncAuthorizedEntriesResponseSchema, { upserted: [wireEntry(id, revision)] })
      .upserted[0]!,
  );

function wireBundle(td: string, sequence: number): MessageInitShape<typeof BundleSchema> {
  return {
    trustDomain: td,
    x509Authorities: [ca.certDer],
    jwtAuthorities: [{ kid: `${td}-${sequence}`, publicKey: jwtKey.publicKeyDer }],
    sequence: BigInt(sequence),
    refreshHint: 300n,
  };
}
const domainBundle = (td: string, sequence: number) =>
  bundleFromWire(
    create(SyncAuthorizedEntriesResponseSchema, { bundle: wireBundle(td, sequence) }).bundle!,
  );

const msg = (m: MessageInitShape<typeof SyncAuthorizedEntriesResponseSchema>) =>
  create(SyncAuthorizedEntriesResponseSchema, m);

/** A sync whose server answers each stream with `answers` and records the requests. */
function syncWith(
  answers: SyncAuthorizedEntriesResponse[],
  requests: SyncAuthorizedEntriesRequest[],
) {
  const ac = new AbortController();
  const sync = new EntrySync({
    clients: () =>
      ({
        sync: {
          syncAuthorizedEntries: (req: SyncAuthorizedEntriesRequest) =>
            (async function* () {
              requests.push(req);
              yield* answers;
              ac.abort(); // one stream is enough
            })(),
        },
      }) as unknown as ServerClients,
    onRefused: async () => {},
    onBundle: async () => {},
    backoff: new Backoff({ initialMs: 1, maxMs: 1 }),
    log: () => {},
    trustDomain: 'example.org',
  });
  return { sync, run: () => sync.run(ac.signal) };
}

const restored: SyncState = {
  entries: new Map([
    ['keep', domainEntry('keep', 1)],
    ['stale', domainEntry('stale', 1)],
    ['gone', domainEntry('gone', 2)],
  ]),
  bundle: domainBundle('example.org', 1),
  federatedBundles: new Map([
    ['partner.test', domainBundle('partner.test', 1)],
    ['example.org', domainBundle('example.org', 1)], // never a federated bundle
  ]),
};

describe('EntrySync: restored state', () => {
  it('serves the restored state before the server answers, without claiming to be synced', () => {
    const { sync } = syncWith([], []);
    let changes = 0;
    sync.onChange(() => changes++);
    sync.restore(restored);
    assert.equal(changes, 1);
    assert.deepEqual([...sync.entries.keys()], ['keep', 'stale', 'gone']);
    assert.equal(sync.bundle?.sequence, 1);
    assert.deepEqual([...sync.federatedBundles.keys()], ['partner.test']);
    assert.equal(sync.synced, false);
  });

  it('declares the restored entries as known; the initial message decides what stays', async () => {
    const requests: SyncAuthorizedEntriesRequest[] = [];
    const { sync, run } = syncWith(
      [
        msg({
          initial: true,
          upserted: [wireEntry('stale', 2), wireEntry('new', 1)],
          removed: ['gone'],
          bundle: wireBundle('example.org', 2),
          federatedBundles: [wireBundle('other.test', 1)],
        }),
      ],
      requests,
    );
    sync.restore(restored);
    await run();
    assert.equal(requests.length, 1);
    assert.deepEqual(requests[0]?.known, { keep: 1n, stale: 1n, gone: 2n });
    assert.deepEqual([...sync.entries.keys()].sort(), ['keep', 'new', 'stale']);
    assert.equal(sync.entries.get('stale')?.revision, 2);
    assert.equal(sync.bundle?.sequence, 2);
    assert.deepEqual([...sync.federatedBundles.keys()], ['other.test']);
    assert.equal(sync.synced, true);
  });

  it('an initial message drops held entries its request did not declare', async () => {
    const { sync } = syncWith([], []);
    sync.restore(restored);
    // No stream declared anything (as a request with an empty `known`): all held entries are
    // outside the server's answer and go; only what it sends stays.
    await sync.apply(msg({ initial: true, upserted: [wireEntry('new', 1)] }));
    assert.deepEqual([...sync.entries.keys()], ['new']);
    assert.deepEqual([...sync.federatedBundles.keys()], []);
  });

  it('a fresh agent declares nothing', async () => {
    const requests: SyncAuthorizedEntriesRequest[] = [];
    const { sync, run } = syncWith(
      [msg({ initial: true, upserted: [wireEntry('a', 1)] })],
      requests,
    );
    await run();
    assert.deepEqual(requests[0]?.known, {});
    assert.deepEqual([...sync.entries.keys()], ['a']);
  });
});

describe('EntrySync: access revision', () => {
  it('reports every message’s access_revision and whether it is the initial one', async () => {
    const seen: [bigint, boolean][] = [];
    const sync = new EntrySync({
      clients: () => ({}) as ServerClients,
      onRefused: async () => {},
      onBundle: async () => {},
      backoff: new Backoff({ initialMs: 1, maxMs: 1 }),
      log: () => {},
      trustDomain: 'example.org',
      onAccessRevision: (r, initial) => seen.push([r, initial]),
    });
    await sync.apply(msg({ initial: true, accessRevision: 4n }));
    await sync.apply(msg({ upserted: [wireEntry('a', 1)] }));
    await sync.apply(msg({ accessRevision: 5n }));
    assert.deepEqual(seen, [
      [4n, true],
      [0n, false],
      [5n, false],
    ]);
  });
});

describe('EntrySync: node fingerprint', () => {
  it('reports a change of node_fingerprint, across reconnects, but not the first value', async () => {
    let changes = 0;
    const sync = new EntrySync({
      clients: () => ({}) as ServerClients,
      onRefused: async () => {},
      onBundle: async () => {},
      backoff: new Backoff({ initialMs: 1, maxMs: 1 }),
      log: () => {},
      trustDomain: 'example.org',
      onNodeChange: () => changes++,
    });
    await sync.apply(msg({ initial: true, nodeFingerprint: 7n }));
    assert.equal(changes, 0);
    // Unset (an older server, or a message about something else) and the same value: no change.
    await sync.apply(msg({ upserted: [wireEntry('a', 1)] }));
    await sync.apply(msg({ initial: true, nodeFingerprint: 7n }));
    assert.equal(changes, 0);
    await sync.apply(msg({ nodeFingerprint: 9n }));
    assert.equal(changes, 1);
    // A new stream (the agent attested again) with other facts.
    await sync.apply(msg({ initial: true, nodeFingerprint: 7n }));
    assert.equal(changes, 2);
  });
});
