// What a parent ID names, against the real SQLite store.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../core/clock.ts';
import { TrustDomain } from '../../core/spiffe-id.ts';
import { makeEntry, makeNode, T0 } from '../../store/conformance/fixtures.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import { checkParent } from './parent-check.ts';

const TD = TrustDomain.parse('example.org');
const HASH = 'ab'.repeat(32);

describe('checkParent', () => {
  let dir: string;
  let store: Store;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-parent-'));
    store = await openStore({ kind: 'sqlite', path: path.join(dir, 'db') }, new ManualClock(T0));
    await store.nodes.upsert(makeNode(1));
    await store.nodes.upsert(makeNode(2, { banned: true }));
    await store.joinTokens.create({
      tokenHash: HASH,
      spiffeId: '',
      expiresAt: T0 + 1000,
      createdAt: T0,
    });
    await store.joinTokens.create({
      tokenHash: 'cd'.repeat(32),
      spiffeId: 'spiffe://example.org/custom/node',
      expiresAt: T0 + 1000,
      createdAt: T0,
    });
    await store.entries.create(
      makeEntry(1, {
        spiffeId: 'spiffe://example.org/alias/k8s-nodes',
        parentId: 'spiffe://example.org/spire/server',
      }),
    );
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const kind = (id: string, now = T0) => checkParent(store, TD, id, now);

  it('names the server, an attested agent, a pending join token and a node alias', async () => {
    assert.equal(await kind('spiffe://example.org/spire/server'), 'server');
    assert.equal(await kind(makeNode(1).spiffeId), 'agent');
    assert.equal(
      await kind(`spiffe://example.org/spire/agent/join_token/${HASH.slice(0, 32)}`),
      'join_token',
    );
    assert.equal(await kind('spiffe://example.org/custom/node'), 'join_token');
    assert.equal(await kind('spiffe://example.org/alias/k8s-nodes'), 'node_alias');
  });

  it('names nothing for a typo, a banned agent, an expired token or another trust domain', async () => {
    assert.equal(await kind('spiffe://example.org/spire/agent/join_token/n0009'), '');
    assert.equal(await kind(makeNode(2).spiffeId), '');
    assert.equal(
      await kind(`spiffe://example.org/spire/agent/join_token/${HASH.slice(0, 32)}`, T0 + 1000),
      '',
    );
    assert.equal(await kind(`spiffe://example.org/spire/agent/join_token/${'_'.repeat(32)}`), '');
    assert.equal(await kind('spiffe://other.org/spire/server'), '');
    assert.equal(await kind('spiffe://example.org/alias/k8s-node'), '');
  });

  it('refuses a malformed ID', async () => {
    await assert.rejects(kind('not-an-id'), { name: 'InvalidArgumentError' });
  });
});
