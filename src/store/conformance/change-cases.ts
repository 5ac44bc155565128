// Conformance: ChangeFeed, and the events each entry/node mutation appends.
import assert from 'node:assert/strict';
import type { ChangeEvent } from '../types.ts';
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
