// Conformance: EntryStore.
import assert from 'node:assert/strict';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../../core/errors.ts';
import type { Entry } from '../../core/entry.ts';
import type { Store } from '../types.ts';
import { type Cases, entryId, makeEntry } from './fixtures.ts';

async function listAll(s: Store, filter: Parameters<Store['entries']['list']>[0], size: number) {
  const out: Entry[] = [];
  let token = '';
  do {
    const page = await s.entries.list(filter, size, token);
    assert.ok(page.items.length <= size);
    out.push(...page.items);
    token = page.nextPageToken;
  } while (token !== '');
  return out;
}

export const entryCases: Cases = {
  'creates, gets and counts entries; selectors come back canonical': async (s) => {
    const e = makeEntry(1, {
      selectors: [
        { type: 'unix', value: 'uid:1' },
        { type: 'k8s', value: 'ns:a' },
        { type: 'unix', value: 'uid:1' },
      ],
      expiresAt: 1_800_000_000_000,
      admin: true,
    });
    const created = await s.entries.create(e);
    const canonical = {
      ...e,
      selectors: [
        { type: 'k8s', value: 'ns:a' },
        { type: 'unix', value: 'uid:1' },
      ],
    };
    assert.deepEqual(created, canonical);
    assert.deepEqual(await s.entries.get(e.id), canonical);
    assert.equal(await s.entries.get('missing'), null);
    assert.equal(await s.entries.count(), 1);
  },

  'keeps the disclose list (migration 14) through create and update': async (s) => {
    const e = makeEntry(1, { disclose: ['image.digest', 'posture'] });
    assert.deepEqual((await s.entries.create(e)).disclose, ['image.digest', 'posture']);
    assert.deepEqual((await s.entries.get(e.id))?.disclose, ['image.digest', 'posture']);
    const { disclose: _d, ...without } = e;
    await s.entries.update(without);
    assert.equal((await s.entries.get(e.id))?.disclose, undefined);
  },

  'rejects a duplicate (same spiffe_id, parent_id and selector set) and a duplicate id': async (
    s,
  ) => {
    await s.entries.create(makeEntry(1));
    const reordered = makeEntry(1, {
      id: entryId(2),
      selectors: [...makeEntry(1).selectors].reverse(),
    });
    await assert.rejects(s.entries.create(reordered), {
      name: 'AlreadyExistsError',
      message: 'an entry with the same spiffe_id, parent_id and selectors already exists',
    });
    await assert.rejects(s.entries.create(makeEntry(1, { spiffeId: 'spiffe://example.org/x' })), {
      name: 'AlreadyExistsError',
      message: 'an entry with this id already exists',
    });
    // A different selector set is a different entry.
    await s.entries.create(makeEntry(3, { spiffeId: makeEntry(1).spiffeId }));
    assert.equal(await s.entries.count(), 2);
    assert.equal((await s.changes.since(0, 100)).length, 2, 'no event for rejected creates');
  },

  'updates every field but id and createdAt and bumps the revision': async (s) => {
    await s.entries.create(makeEntry(1, { revision: 5 }));
    const { revision: _r, ...input } = makeEntry(1, {
      spiffeId: 'spiffe://example.org/renamed',
      selectors: [{ type: 'docker', value: 'image:x' }],
      dnsNames: [],
      federatesWith: [],
      downstream: true,
      hint: '',
      expiresAt: 123,
      createdAt: 1,
    });
    const updated = await s.entries.update(input);
    assert.deepEqual(updated, { ...input, revision: 6, createdAt: makeEntry(1).createdAt });
    assert.deepEqual(await s.entries.get(entryId(1)), updated);
    assert.equal((await s.entries.update(input)).revision, 7);
    const { revision: _m, ...missing } = makeEntry(9);
    await assert.rejects(s.entries.update(missing), NotFoundError);
  },

  'update into a duplicate is rejected and changes nothing': async (s) => {
    await s.entries.create(makeEntry(1));
    await s.entries.create(makeEntry(2));
    const { revision: _r, ...input } = makeEntry(2, {
      spiffeId: makeEntry(1).spiffeId,
      selectors: makeEntry(1).selectors,
    });
    await assert.rejects(s.entries.update(input), AlreadyExistsError);
    assert.deepEqual(await s.entries.get(entryId(2)), makeEntry(2));
    const bySelector = await s.entries.list({ selector: makeEntry(2).selectors[1]! }, 10, '');
    assert.deepEqual(
      bySelector.items.map((e) => e.id),
      [entryId(2)],
    );
  },

  'deletes and returns the entry; NotFoundError when missing': async (s) => {
    await s.entries.create(makeEntry(1));
    assert.deepEqual(await s.entries.delete(entryId(1)), makeEntry(1));
    assert.equal(await s.entries.get(entryId(1)), null);
    await assert.rejects(s.entries.delete(entryId(1)), {
      name: 'NotFoundError',
      message: `entry "${entryId(1)}" not found`,
    });
    // The selector index row went with it: the same entry can be created again.
    await s.entries.create(makeEntry(1));
    assert.equal(await s.entries.count(), 1);
  },

  'lists by id in pages, with every filter': async (s) => {
    const parentB = 'spiffe://example.org/spire/agent/join_token/b';
    const all = Array.from({ length: 25 }, (_, i) =>
      makeEntry(25 - i, i % 3 === 0 ? { parentId: parentB } : {}),
    );
    await s.entries.createMany(all);
    const byId = [...all].sort((a, b) => (a.id < b.id ? -1 : 1));
    assert.deepEqual(await listAll(s, {}, 7), byId);
    assert.deepEqual(await listAll(s, {}, 1000), byId);
    assert.deepEqual(
      await listAll(s, { parentId: parentB }, 2),
      byId.filter((e) => e.parentId === parentB),
    );
    assert.deepEqual(
      await listAll(s, { spiffeId: makeEntry(7).spiffeId }, 5),
      byId.filter((e) => e.id === entryId(7)),
    );
    const sel = { type: 'unix', value: 'uid:1010' };
    assert.deepEqual(
      (await listAll(s, { selector: sel }, 3)).map((e) => e.id),
      [entryId(10)],
    );
    const shared = { type: 'unix', value: 'gid:0' };
    assert.equal((await listAll(s, { selector: shared, parentId: parentB }, 4)).length, 9);
    assert.deepEqual(await listAll(s, { selector: { type: 'unix', value: 'nope' } }, 4), []);
    const exact = await s.entries.list({}, 25, '');
    assert.equal(exact.nextPageToken, '', 'no token when the page ends exactly at the last entry');
  },

  'validates page size and page token': async (s) => {
    for (const size of [0, -1, 1001, 1.5, Number.NaN]) {
      await assert.rejects(s.entries.list({}, size, ''), {
        name: 'InvalidArgumentError',
        message: 'page_size: must be between 1 and 1000',
      });
    }
    for (const token of ['!!!', 'abc', Buffer.from('x').toString('base64url'), 'a'.repeat(9000)]) {
      await assert.rejects(s.entries.list({}, 10, token), InvalidArgumentError);
    }
    await assert.rejects(s.nodes.list({}, 0, ''), InvalidArgumentError);
    await assert.rejects(s.nodes.list({}, 10, '%%'), InvalidArgumentError);
  },

  'createMany inserts in bulk with one event per entry, all or nothing': async (s) => {
    const many = Array.from({ length: 2500 }, (_, i) => makeEntry(i));
    await s.entries.createMany(many);
    assert.equal(await s.entries.count(), 2500);
    assert.deepEqual(await s.entries.get(entryId(1234)), makeEntry(1234));
    assert.equal((await s.changes.since(0, 10_000)).length, 2500);
    const dup = [makeEntry(5000), makeEntry(1, { id: entryId(5001) })];
    await assert.rejects(s.entries.createMany(dup), AlreadyExistsError);
    assert.equal(await s.entries.get(entryId(5000)), null);
    assert.equal(await s.entries.count(), 2500);
    await s.entries.createMany([]);
  },
};
