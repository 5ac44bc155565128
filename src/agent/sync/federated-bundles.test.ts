// The agent's federated bundles: applied from the sync stream (initial set, deltas, bad input)
// and restored from the persisted sync state (sync-state-file.test.ts covers the file).
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import type { Bundle as DomainBundle } from '../../core/bundle.ts';
import { MemoryKeyManager } from '../../crypto/keys/memory-key-manager.ts';
import { makeCa } from '../../crypto/x509/testing/ca.ts';
import {
  SyncAuthorizedEntriesResponseSchema,
  type SyncAuthorizedEntriesResponse,
} from '../../../proto/gen/tessera/v1/sync_pb.js';
import type { BundleSchema } from '../../../proto/gen/tessera/v1/types_pb.js';
import { Backoff } from '../../client/workload/backoff.ts';
import type { ServerClients } from '../identity/server-link.ts';
import { EntrySync, MAX_FEDERATED_BUNDLES } from './entry-sync.ts';
import { SyncStateFile } from './sync-state-file.ts';

type WireBundle = MessageInitShape<typeof BundleSchema>;

const ca = await makeCa('ec-p256', 'partner.test');
const jwtKey = await new MemoryKeyManager().generate('jwt', 'ec-p256');

function wire(td: string, sequence: number, kid = `k${sequence}`): WireBundle {
  return {
    trustDomain: td,
    x509Authorities: [ca.certDer],
    x509Tainted: [false],
    jwtAuthorities: [{ kid, publicKey: jwtKey.publicKeyDer, expiresAt: 0n, tainted: false }],
    sequence: BigInt(sequence),
    refreshHint: 300n,
  };
}

function msg(
  m: MessageInitShape<typeof SyncAuthorizedEntriesResponseSchema>,
): SyncAuthorizedEntriesResponse {
  return create(SyncAuthorizedEntriesResponseSchema, m);
}

function newSync(o: { saved?: ReadonlyMap<string, DomainBundle>[]; logs?: string[] } = {}) {
  return new EntrySync({
    clients: () => ({}) as ServerClients,
    onRefused: async () => {},
    onBundle: async () => {},
    backoff: new Backoff({ initialMs: 1, maxMs: 1 }),
    log: (m, f) => o.logs?.push(`${m} ${JSON.stringify(f ?? {})}`),
    trustDomain: 'example.org',
    onFederatedBundles: async (b) => {
      o.saved?.push(b);
    },
  });
}

const held = (s: EntrySync) =>
  [...s.federatedBundles].map(([td, b]) => `${td}@${b.sequence}`).sort();

describe('EntrySync: federated bundles', () => {
  it('takes the initial set, then upserts and removals; notifies and persists only on change', async () => {
    const saved: ReadonlyMap<string, DomainBundle>[] = [];
    const s = newSync({ saved });
    let changes = 0;
    s.onChange(() => changes++);
    await s.apply(msg({ initial: true, federatedBundles: [wire('a.test', 1), wire('b.test', 1)] }));
    assert.deepEqual(held(s), ['a.test@1', 'b.test@1']);
    assert.equal(saved.length, 1);
    assert.equal(changes, 1);
    assert.equal(s.federatedBundles.get('a.test')?.jwtAuthorities[0]?.kid, 'k1');

    await s.apply(msg({ federatedBundles: [wire('a.test', 2)] }));
    assert.deepEqual(held(s), ['a.test@2', 'b.test@1']);
    await s.apply(msg({ federatedBundlesRemoved: ['b.test'] }));
    assert.deepEqual(held(s), ['a.test@2']);
    assert.equal(saved.length, 3);

    // A repeat of what the agent holds writes nothing.
    await s.apply(msg({ federatedBundles: [wire('a.test', 2)] }));
    assert.equal(saved.length, 3);

    // A new stream's initial message replaces the set: what it lacks is dropped.
    await s.apply(msg({ initial: true, federatedBundles: [wire('c.test', 1)] }));
    assert.deepEqual(held(s), ['c.test@1']);
    await s.apply(msg({ initial: true }));
    assert.deepEqual(held(s), []);
    assert.equal(saved.at(-1)?.size, 0);
  });

  it('refuses the own trust domain, bad names and unusable keys, keeping the rest', async () => {
    const logs: string[] = [];
    const s = newSync({ logs });
    const badKey = wire('badkey.test', 1);
    badKey.jwtAuthorities = [{ kid: 'x', publicKey: new Uint8Array([1, 2, 3]) }];
    const badCert = { ...wire('badcert.test', 1), x509Authorities: [new Uint8Array([0x30, 0])] };
    await s.apply(
      msg({
        initial: true,
        federatedBundles: [
          wire('example.org', 1),
          wire('Not A Domain', 1),
          wire('spiffe://partner.test', 1),
          badKey,
          badCert,
          wire('partner.test', 1),
        ],
      }),
    );
    assert.deepEqual(held(s), ['partner.test@1']);
    assert.equal(logs.filter((l) => l.startsWith('ignoring a federated bundle')).length, 5);
    assert.match(logs.join('\n'), /own trust domain/);
  });

  it('holds at most MAX_FEDERATED_BUNDLES', async () => {
    const logs: string[] = [];
    const s = newSync({ logs });
    const many = Array.from({ length: MAX_FEDERATED_BUNDLES + 5 }, (_, i) =>
      wire(`td${i}.test`, 1),
    );
    await s.apply(msg({ initial: true, federatedBundles: many }));
    assert.equal(s.federatedBundles.size, MAX_FEDERATED_BUNDLES);
    assert.match(logs.join('\n'), /too many federated bundles/);
  });

  it('restored bundles serve until the initial message replaces them', async () => {
    const s = newSync();
    const file = new SyncStateFile(
      mkdtempSync(path.join(os.tmpdir(), 'tessera-fed-')),
      'example.org',
    );
    const first = newSync({});
    await first.apply(msg({ initial: true, federatedBundles: [wire('a.test', 4)] }));
    await file.save({ entries: new Map(), bundle: null, federatedBundles: first.federatedBundles });
    const state = await file.load();
    assert.ok(state);
    s.restore(state);
    assert.deepEqual(held(s), ['a.test@4']);
    await s.apply(msg({ initial: true, federatedBundles: [wire('b.test', 1)] }));
    assert.deepEqual(held(s), ['b.test@1']);
  });
});
