import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Entry } from '../../core/entry.ts';
import { parseSelector } from '../../core/selector.ts';
import { entryOf } from '../../core/testing/entry.ts';
import { EntryIndex } from './entry-index.ts';

const SERVER = 'spiffe://example.org/spire/server';
const AGENT = 'spiffe://example.org/spire/agent/x509pop/node1';
const OTHER_AGENT = 'spiffe://example.org/spire/agent/x509pop/node2';
const NOW = 1_700_000_000_000;

let seq = 0;
function entry(spiffePath: string, parentId: string, over: Partial<Entry> = {}): Entry {
  seq++;
  return entryOf({
    id: `e-${seq}`,
    spiffeId: `spiffe://example.org/${spiffePath}`,
    parentId,
    selectors: [{ type: 'unix', value: `uid:${seq}` }],
    revision: 0,
    createdAt: NOW,
    ...over,
  });
}

function alias(path: string, selectors: string[], over: Partial<Entry> = {}): Entry {
  return entry(path, SERVER, { selectors: selectors.map(parseSelector), ...over });
}

function ids(entries: readonly Entry[]): string[] {
  return entries.map((e) => e.id).sort();
}

function indexOf(...entries: Entry[]): EntryIndex {
  const index = new EntryIndex(SERVER);
  for (const e of entries) index.upsert(e);
  return index;
}

const none = new Set<string>();

describe('EntryIndex.authorizedFor', () => {
  it('returns the direct children of the agent and nothing of other agents', () => {
    const a = entry('a', AGENT);
    const b = entry('b', AGENT);
    const c = entry('c', OTHER_AGENT);
    const index = indexOf(a, b, c);
    assert.deepEqual(ids(index.authorizedFor(AGENT, none, NOW)), ids([a, b]));
    assert.deepEqual(ids(index.authorizedFor(OTHER_AGENT, none, NOW)), [c.id]);
    assert.deepEqual(index.authorizedFor('spiffe://example.org/spire/agent/x/none', none, NOW), []);
  });

  it('returns descendants through entries used as parents', () => {
    const child = entry('downstream', AGENT);
    const grandchild = entry('workload', child.spiffeId);
    const great = entry('deeper', grandchild.spiffeId);
    const unrelated = entry('unrelated', 'spiffe://example.org/elsewhere');
    const index = indexOf(child, grandchild, great, unrelated);
    assert.deepEqual(ids(index.authorizedFor(AGENT, none, NOW)), ids([child, grandchild, great]));
  });

  it('returns entries under node aliases whose selectors are all among the node selectors', () => {
    const cluster = alias('cluster-a', ['x509pop:ca:fingerprint:abc', 'x509pop:subject:cn:n1']);
    const underAlias = entry('svc', cluster.spiffeId);
    const deeper = entry('svc-child', underAlias.spiffeId);
    const index = indexOf(cluster, underAlias, deeper);
    const all = new Set(['x509pop:ca:fingerprint:abc', 'x509pop:subject:cn:n1', 'x509pop:other:1']);
    const got = index.authorizedFor(AGENT, all, NOW);
    assert.deepEqual(ids(got), ids([underAlias, deeper]));
    assert.ok(!got.some((e) => e.id === cluster.id), 'the alias entry itself is not minted for');
  });

  it('does not use an alias when only some of its selectors match', () => {
    const cluster = alias('cluster-b', ['x509pop:ca:fingerprint:abc', 'x509pop:subject:cn:n1']);
    const underAlias = entry('svc', cluster.spiffeId);
    const index = indexOf(cluster, underAlias);
    const some = new Set(['x509pop:ca:fingerprint:abc', 'x509pop:other:1']);
    assert.deepEqual(index.authorizedFor(AGENT, some, NOW), []);
    assert.deepEqual(index.authorizedFor(AGENT, none, NOW), []);
  });

  it('combines the agent subtree and several matching aliases without duplicates', () => {
    const a1 = alias('alias-1', ['region:eu']);
    const a2 = alias('alias-2', ['region:eu', 'tier:gold']);
    const shared = entry('shared', a1.spiffeId);
    const gold = entry('gold', a2.spiffeId);
    const direct = entry('direct', AGENT);
    // Reachable both via the agent and via alias-1.
    const twice = entry('twice', direct.spiffeId);
    const twiceViaAlias = { ...twice, id: 'e-twice-alias', parentId: a1.spiffeId };
    const index = indexOf(a1, a2, shared, gold, direct, twice, twiceViaAlias);
    const got = index.authorizedFor(AGENT, new Set(['region:eu', 'tier:gold']), NOW);
    assert.deepEqual(ids(got), ids([shared, gold, direct, twice, twiceViaAlias]));
    assert.equal(new Set(got.map((e) => e.id)).size, got.length);
    const euOnly = index.authorizedFor(AGENT, new Set(['region:eu']), NOW);
    assert.deepEqual(ids(euOnly), ids([shared, direct, twice, twiceViaAlias]));
  });

  it('excludes expired entries and what hangs only below them', () => {
    const live = entry('live', AGENT, { expiresAt: NOW + 1 });
    const expired = entry('expired', AGENT, { expiresAt: NOW });
    const belowExpired = entry('below', expired.spiffeId);
    const index = indexOf(live, expired, belowExpired);
    assert.deepEqual(ids(index.authorizedFor(AGENT, none, NOW)), [live.id]);
    assert.deepEqual(
      ids(index.authorizedFor(AGENT, none, NOW - 1)),
      ids([live, expired, belowExpired]),
    );
  });

  it('does not use an expired node alias', () => {
    const al = alias('expiring', ['region:eu'], { expiresAt: NOW });
    const under = entry('under', al.spiffeId);
    const index = indexOf(al, under);
    const eu = new Set(['region:eu']);
    assert.deepEqual(ids(index.authorizedFor(AGENT, eu, NOW - 1)), [under.id]);
    assert.deepEqual(index.authorizedFor(AGENT, eu, NOW), []);
  });

  it('terminates on cycles and returns each entry once', () => {
    const a = entry('a', AGENT);
    const b = entry('b', a.spiffeId);
    const c = entry('c', b.spiffeId);
    const back = entry('a', c.spiffeId); // spiffe://example.org/a again, closing a → b → c → a
    const self = entry('self', 'spiffe://example.org/self');
    const selfViaAgent = entry('self', AGENT);
    const index = indexOf(a, b, c, back, self, selfViaAgent);
    assert.deepEqual(
      ids(index.authorizedFor(AGENT, none, NOW)),
      ids([a, b, c, back, self, selfViaAgent]),
    );
  });
});

describe('EntryIndex upsert and remove', () => {
  it('get, size and remove', () => {
    const a = entry('a', AGENT);
    const index = indexOf(a);
    assert.equal(index.size, 1);
    assert.equal(index.get(a.id), a);
    index.remove(a.id);
    index.remove('missing');
    assert.equal(index.size, 0);
    assert.equal(index.get(a.id), undefined);
    assert.deepEqual(index.authorizedFor(AGENT, none, NOW), []);
  });

  it('moves an entry when its parent changes', () => {
    const a = entry('a', AGENT);
    const index = indexOf(a);
    index.upsert({ ...a, parentId: OTHER_AGENT, revision: 1 });
    assert.deepEqual(index.authorizedFor(AGENT, none, NOW), []);
    assert.deepEqual(ids(index.authorizedFor(OTHER_AGENT, none, NOW)), [a.id]);
    assert.equal(index.size, 1);
  });

  it('re-links children when an entry changes its SPIFFE ID', () => {
    const parent = entry('p', AGENT);
    const child = entry('c', parent.spiffeId);
    const index = indexOf(parent, child);
    index.upsert({ ...parent, spiffeId: 'spiffe://example.org/p2', revision: 1 });
    assert.deepEqual(ids(index.authorizedFor(AGENT, none, NOW)), [parent.id]);
  });

  it('ignores a stale revision', () => {
    const a = entry('a', AGENT, { revision: 5 });
    const index = indexOf(a);
    index.upsert({ ...a, parentId: OTHER_AGENT, revision: 4 });
    assert.equal(index.get(a.id)?.parentId, AGENT);
    assert.deepEqual(ids(index.authorizedFor(AGENT, none, NOW)), [a.id]);
  });

  it('keeps alias selectors current when an alias changes or goes', () => {
    const al = alias('al', ['region:eu']);
    const under = entry('under', al.spiffeId);
    const index = indexOf(al, under);
    const eu = new Set(['region:eu']);
    const us = new Set(['region:us']);
    assert.deepEqual(ids(index.authorizedFor(AGENT, eu, NOW)), [under.id]);
    index.upsert({ ...al, selectors: [parseSelector('region:us')], revision: 1 });
    assert.deepEqual(index.authorizedFor(AGENT, eu, NOW), []);
    assert.deepEqual(ids(index.authorizedFor(AGENT, us, NOW)), [under.id]);
    // Moving the alias away from the server makes it an ordinary entry.
    index.upsert({
      ...al,
      parentId: OTHER_AGENT,
      selectors: [parseSelector('region:us')],
      revision: 2,
    });
    assert.deepEqual(index.authorizedFor(AGENT, us, NOW), []);
    index.upsert({ ...al, revision: 3 });
    index.remove(al.id);
    assert.deepEqual(index.authorizedFor(AGENT, eu, NOW), []);
  });
});

describe('EntryIndex.isAdmin', () => {
  it('counts admin entries per SPIFFE ID across upserts and removals', () => {
    const a1 = entry('admin', AGENT, { admin: true });
    const a2 = entry('admin', OTHER_AGENT, { admin: true });
    const index = indexOf(a1, a2, entry('plain', AGENT));
    assert.equal(index.isAdmin(a1.spiffeId), true);
    assert.equal(index.isAdmin('spiffe://example.org/plain'), false);
    index.remove(a1.id);
    assert.equal(index.isAdmin(a1.spiffeId), true, 'a2 still names it');
    index.upsert({ ...a2, admin: false, revision: 1 });
    assert.equal(index.isAdmin(a1.spiffeId), false);
    index.upsert({ ...a2, admin: true, revision: 2 });
    index.upsert({ ...a2, admin: true, revision: 3 });
    assert.equal(index.isAdmin(a1.spiffeId), true, 're-upserting does not double count');
    index.remove(a2.id);
    assert.equal(index.isAdmin(a1.spiffeId), false);
  });
});

describe('EntryIndex.isAdmin with a time', () => {
  it('counts only unexpired admin entries', () => {
    const a1 = entry('ops', AGENT, { admin: true, expiresAt: NOW });
    const index = indexOf(a1);
    assert.equal(index.isAdmin(a1.spiffeId, NOW - 1), true);
    assert.equal(index.isAdmin(a1.spiffeId, NOW), false, 'expired');
    const a2 = entry('ops', OTHER_AGENT, { admin: true, expiresAt: null });
    index.upsert(a2);
    assert.equal(index.isAdmin(a1.spiffeId, NOW), true, 'another, unexpired entry names it');
    index.remove(a2.id);
    assert.equal(index.isAdmin(a1.spiffeId, NOW), false);
    assert.equal(index.isAdmin('spiffe://example.org/nobody', NOW), false);
  });
});

describe('EntryIndex change notifications', () => {
  it('notifies subscribers of changed ids until they unsubscribe', () => {
    const index = new EntryIndex(SERVER);
    const seen: string[][] = [];
    const off = index.onChange((changed) => seen.push([...changed]));
    index.notify(['a', 'b']);
    index.notify([]);
    off();
    index.notify(['c']);
    assert.deepEqual(seen, [['a', 'b']]);
  });
});

describe('EntryIndex at scale', () => {
  it('indexes 100,000 entries and a lookup returns exactly the answer', () => {
    const index = new EntryIndex(SERVER);
    const agents = 1000;
    for (let i = 0; i < 100_000; i++) {
      const agent = `spiffe://example.org/spire/agent/join_token/n${i % agents}`;
      index.upsert({
        ...entry(`w/${i}`, agent),
        id: `big-${i}`,
        selectors: [{ type: 'unix', value: `uid:${i}` }],
      });
    }
    // Aliases keyed by many distinct selectors; only one matches the node.
    for (let i = 0; i < 1000; i++) index.upsert(alias(`alias/${i}`, [`k8s:node:${i}`]));
    const viaAlias = entry('via-alias', 'spiffe://example.org/alias/7');
    index.upsert(viaAlias);
    assert.equal(index.size, 100_000 + 1000 + 1);

    const agent = 'spiffe://example.org/spire/agent/join_token/n42';
    const got = index.authorizedFor(agent, new Set(['k8s:node:7']), NOW);
    const expected = Array.from({ length: 100 }, (_, k) => `big-${42 + k * agents}`);
    assert.deepEqual(ids(got), [...expected, viaAlias.id].sort());
    for (const e of got) {
      assert.ok(e.parentId === agent || e.parentId === 'spiffe://example.org/alias/7');
    }
  });
});

describe('EntryIndex.authorizedEntry', () => {
  it('agrees with authorizedFor on a random forest of entries, aliases and expiries', () => {
    // Deterministic pseudo-random graph (LCG): parents drawn from agents, aliases and earlier entries.
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const entries: Entry[] = [
      alias('alias/a', ['x509pop:a']),
      alias('alias/ab', ['x509pop:a', 'x509pop:b']),
      alias('alias/c', ['x509pop:c']),
      alias('alias/expired', ['x509pop:a'], { expiresAt: NOW - 1 }),
    ];
    const parents = [AGENT, OTHER_AGENT, ...entries.map((e) => e.spiffeId)];
    for (let i = 0; i < 400; i++) {
      const e = entry(`w/${rand(150)}`, parents[rand(parents.length)]!, {
        expiresAt: rand(10) === 0 ? NOW - 1 : null,
      });
      entries.push(e);
      parents.push(e.spiffeId);
    }
    const index = indexOf(...entries);
    for (const selectors of [
      none,
      new Set(['x509pop:a']),
      new Set(['x509pop:a', 'x509pop:b', 'x509pop:c']),
    ]) {
      const expected = new Set(ids(index.authorizedFor(AGENT, selectors, NOW)));
      for (const e of entries) {
        const got = index.authorizedEntry(AGENT, selectors, e.id, NOW);
        assert.equal(
          got !== undefined,
          expected.has(e.id),
          `entry ${e.spiffeId} under ${e.parentId}`,
        );
      }
    }
    assert.equal(index.authorizedEntry(AGENT, none, 'missing', NOW), undefined);
  });
});

describe('EntryIndex: node aliases parented by an agent (token generate --spiffe-id)', () => {
  it('reaches entries under the alias, through chains of aliases, for that agent only', () => {
    const nodeAlias = entry('nodes/web', AGENT, {
      selectors: [parseSelector(`spiffe_id:${AGENT}`)],
    });
    const group = entry('groups/frontend', nodeAlias.spiffeId);
    const workload = entry('web', nodeAlias.spiffeId);
    const nested = entry('frontend/app', group.spiffeId);
    const elsewhere = entry('db', 'spiffe://example.org/nodes/db');
    const index = indexOf(nodeAlias, group, workload, nested, elsewhere);
    assert.deepEqual(
      ids(index.authorizedFor(AGENT, none, NOW)),
      ids([nodeAlias, group, workload, nested]),
    );
    assert.deepEqual(index.authorizedFor(OTHER_AGENT, none, NOW), []);
    for (const e of [workload, nested]) {
      assert.equal(index.authorizedEntry(AGENT, none, e.id, NOW), e);
      assert.equal(index.authorizedEntry(OTHER_AGENT, none, e.id, NOW), undefined);
    }
    assert.equal(index.authorizedEntry(AGENT, none, elsewhere.id, NOW), undefined);
    // An expired alias grants nothing below it.
    index.upsert({ ...nodeAlias, expiresAt: NOW - 1, revision: 1 });
    assert.deepEqual(index.authorizedFor(AGENT, none, NOW), []);
    assert.equal(index.authorizedEntry(AGENT, none, workload.id, NOW), undefined);
  });
});
