// Conformance: ChangeFeed, and the events each entry/node mutation appends.
import assert from 'node:assert/strict';
import type { ChangeEvent, Store } from '../types.ts';
import { type Cases, entryId, makeEntry, makeNode } from './fixtures.ts';

const brief = (events: ChangeEvent[]) => events.map((e) => `${e.kind}:${e.op}:${e.targetId}`);

export const changeCases: Cases = {
  'appends one event per mutation, in order, with increasing ids': async (s) => {
    assert.equal(await s.changes.latestId(), 0);
    const node = makeNode(1);
    await s.entries.create(makeEntry(1));
    const { revision: _r, ...input } = makeEntry(1);
    await s.entries.update(input);
    await s.nodes.upsert(node);
    await s.nodes.upsert(node);
    await s.nodes.update(node.spiffeId, { banned: true });
    await s.nodes.delete(node.spiffeId);
    await s.entries.delete(entryId(1));
    const events = await s.changes.since(0, 100);
    assert.deepEqual(brief(events), [
      `entry:create:${entryId(1)}`,
      `entry:update:${entryId(1)}`,
      `node:create:${node.spiffeId}`,
      `node:update:${node.spiffeId}`,
      `node:update:${node.spiffeId}`,
      `node:delete:${node.spiffeId}`,
      `entry:delete:${entryId(1)}`,
    ]);
    for (let i = 1; i < events.length; i++) assert.ok(events[i]!.id > events[i - 1]!.id);
    assert.equal(await s.changes.latestId(), events.at(-1)!.id);
    const now = Date.now();
    for (const e of events) assert.ok(Math.abs(e.createdAt - now) < 60_000);
  },

  'since() pages by id and honours the limit': async (s) => {
    await s.entries.createMany(Array.from({ length: 10 }, (_, i) => makeEntry(i)));
    const all = await s.changes.since(0, 100);
    assert.equal(all.length, 10);
    const firstThree = await s.changes.since(0, 3);
    assert.deepEqual(firstThree, all.slice(0, 3));
    assert.deepEqual(await s.changes.since(all[2]!.id, 100), all.slice(3));
    assert.deepEqual(await s.changes.since(all.at(-1)!.id, 100), []);
    await assert.rejects(s.changes.since(0, 0), { name: 'InvalidArgumentError' });
  },

  'byIds() returns exactly the existing events asked for, ascending': async (s) => {
    await s.entries.createMany(Array.from({ length: 5 }, (_, i) => makeEntry(i)));
    const all = await s.changes.since(0, 100);
    const ids = [all[3]!.id, all[1]!.id, all[1]!.id, all.at(-1)!.id + 1000];
    assert.deepEqual(await s.changes.byIds(ids), [all[1], all[3]]);
    assert.deepEqual(await s.changes.byIds([]), []);
  },

  'prune() deletes events older than the bound; ids are never reused': async (s) => {
    await s.entries.create(makeEntry(1));
    await s.entries.create(makeEntry(2));
    const before = await s.changes.since(0, 10);
    assert.equal(await s.changes.prune(before[0]!.createdAt - 1), 0);
    assert.equal(await s.changes.prune(Date.now() + 60_000), 2);
    assert.deepEqual(await s.changes.since(0, 10), []);
    await s.entries.create(makeEntry(3));
    const [next] = await s.changes.since(0, 10);
    assert.ok(next!.id > before[1]!.id);
  },
};

/** The topics this store delivered from its own commits, in order. */
function localCommits(s: Store): { readonly topics: string[]; off(): void } {
  const topics: string[] = [];
  const off = s.notifications.subscribe('changes', (topic, source) => {
    if (source === 'local') topics.push(topic);
  });
  return { topics, off };
}

// Commit notifications (types.ts CommitNotifications): what this store's own writes announce.
// Delivery of a local commit happens before the writing call resolves, so these need no waiting.
export const commitNotificationCases: Cases = {
  'a committed transaction announces "changes" once, after it commits': async (s) => {
    const seen = localCommits(s);
    await s.transaction(async (tx) => {
      await tx.entries.create(makeEntry(1));
      await tx.entries.create(makeEntry(2));
      await tx.nodes.upsert(makeNode(1));
      assert.deepEqual(seen.topics, [], 'nothing is announced before the commit');
    });
    assert.deepEqual(seen.topics, ['changes']);
    seen.off();
  },

  'every committed entry and node write announces "changes"': async (s) => {
    const seen = localCommits(s);
    const node = makeNode(1);
    await s.entries.create(makeEntry(1));
    await s.entries.createMany([makeEntry(2), makeEntry(3)]);
    const { revision: _r, ...input } = makeEntry(1);
    await s.entries.update(input);
    await s.entries.delete(entryId(2));
    await s.nodes.upsert(node);
    await s.nodes.update(node.spiffeId, { banned: true });
    await s.nodes.delete(node.spiffeId);
    assert.deepEqual(seen.topics, Array(7).fill('changes'));
    seen.off();
  },

  'the listener reads the committed change when it is called': async (s) => {
    const reads: Array<Promise<ChangeEvent[]>> = [];
    const off = s.notifications.subscribe('changes', (_t, source) => {
      if (source === 'local') reads.push(s.changes.since(0, 100));
    });
    await s.entries.create(makeEntry(1));
    off();
    assert.equal(reads.length, 1);
    assert.deepEqual(brief(await reads[0]!), [`entry:create:${entryId(1)}`]);
  },

  'a rolled-back transaction or a failed write announces nothing': async (s) => {
    await s.entries.create(makeEntry(1));
    const seen = localCommits(s);
    await assert.rejects(
      s.transaction(async (tx) => {
        await tx.entries.create(makeEntry(2));
        throw new Error('roll back');
      }),
      /roll back/,
    );
    await assert.rejects(s.entries.create(makeEntry(1)), { name: 'AlreadyExistsError' });
    await assert.rejects(s.entries.delete(entryId(9)), { name: 'NotFoundError' });
    await assert.rejects(s.nodes.delete(makeNode(9).spiffeId), { name: 'NotFoundError' });
    assert.deepEqual(seen.topics, []);
    assert.equal(await s.entries.get(entryId(2)), null);
    seen.off();
  },

  'writes outside the change feed announce nothing on "changes"': async (s) => {
    const seen = localCommits(s);
    await s.joinTokens.create({
      tokenHash: 'a'.repeat(64),
      spiffeId: '',
      expiresAt: 1,
      createdAt: 0,
    });
    await s.revokedTokens.revoke('jti-1', Date.now() + 60_000, Date.now());
    assert.deepEqual(seen.topics, []);
    seen.off();
  },

  'unsubscribe stops delivery to that subscription only; a throwing listener fails nothing': async (
    s,
  ) => {
    const a = localCommits(s);
    const b = localCommits(s);
    const offThrowing = s.notifications.subscribe('changes', () => {
      throw new Error('listener bug');
    });
    await s.entries.create(makeEntry(1));
    a.off();
    await s.entries.create(makeEntry(2));
    offThrowing();
    b.off();
    await s.entries.create(makeEntry(3));
    assert.deepEqual(a.topics, ['changes']);
    assert.deepEqual(b.topics, ['changes', 'changes']);
    assert.equal(await s.entries.count(), 3);
  },
};
