import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../core/clock.ts';
import type { Entry } from '../../core/entry.ts';
import { T0, makeEntry } from '../../store/conformance/fixtures.ts';
import { openStore } from '../../store/open.ts';
import type { ChangeEvent, ChangeFeed, Store } from '../../store/types.ts';
import { ChangeFollower, GAP_TTL_MS, RELOAD_AFTER_MS } from './change-follower.ts';
import { EntryIndex } from '../registration/entry-index.ts';

const SERVER = 'spiffe://example.org/spire/server';
const AGENT = 'spiffe://example.org/spire/agent/join_token/a';

let dir = '';
let n = 0;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tessera-follower-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function withStore(fn: (store: Store, clock: ManualClock) => Promise<void>): Promise<void> {
  const clock = new ManualClock(T0);
  const store = await openStore(
    { kind: 'sqlite', path: path.join(dir, `db${n++}.sqlite3`) },
    clock,
  );
  try {
    await fn(store, clock);
  } finally {
    await store.close();
  }
}

function authorized(index: EntryIndex): string[] {
  return index
    .authorizedFor(AGENT, new Set(), T0)
    .map((e) => e.id)
    .sort();
}

describe('ChangeFollower on a real SQLite store', () => {
  it('start loads every entry, across pages', async () => {
    await withStore(async (store) => {
      const entries = Array.from({ length: 1205 }, (_, i) => makeEntry(i + 1));
      await store.entries.createMany(entries);
      const index = new EntryIndex(SERVER);
      const follower = await ChangeFollower.start(store, index, new ManualClock(T0));
      assert.equal(index.size, 1205);
      assert.equal(follower.cursor, await store.changes.latestId());
      assert.deepEqual(index.get(entries[1204]?.id ?? ''), entries[1204]);
      assert.equal(await follower.poll(), 0, 'nothing new since start');
    });
  });

  it('reloads every entry after a long stall, when pruned events may have been missed', async () => {
    await withStore(async (store, clock) => {
      const [a, b] = [makeEntry(1), makeEntry(2)];
      await store.entries.createMany([a!, b!]);
      const index = new EntryIndex(SERVER);
      const follower = await ChangeFollower.start(store, index, clock);
      // While this server could not poll, another one deleted an entry and the event was pruned.
      await store.entries.delete(a!.id);
      clock.advance(RELOAD_AFTER_MS + 1);
      await store.changes.prune(clock.now());
      await follower.poll();
      assert.equal(index.get(a!.id), undefined);
      assert.deepEqual(index.get(b!.id), b);
      assert.equal(follower.cursor, await store.changes.latestId());
    });
  });

  it('poll applies creates, updates and deletes, and notifies the changed ids', async () => {
    await withStore(async (store, clock) => {
      await store.entries.create(makeEntry(1));
      const index = new EntryIndex(SERVER);
      const follower = await ChangeFollower.start(store, index, clock);
      const notified: string[][] = [];
      index.onChange((ids) => notified.push([...ids].sort()));
      assert.deepEqual(authorized(index), [makeEntry(1).id]);

      const e2 = await store.entries.create(makeEntry(2));
      const e3 = await store.entries.create(makeEntry(3));
      assert.equal(await follower.poll(), 2);
      assert.deepEqual(authorized(index), [makeEntry(1).id, e2.id, e3.id]);
      assert.deepEqual(notified, [[e2.id, e3.id]]);

      // Update: e2 moves to another parent; e3 is deleted.
      const { revision: _r, ...rest } = e2;
      const moved = await store.entries.update({ ...rest, parentId: 'spiffe://example.org/other' });
      await store.entries.delete(e3.id);
      assert.equal(await follower.poll(), 2);
      assert.deepEqual(authorized(index), [makeEntry(1).id]);
      assert.equal(index.get(e2.id)?.revision, moved.revision);
      assert.equal(index.get(e2.id)?.parentId, 'spiffe://example.org/other');
      assert.equal(index.get(e3.id), undefined);
      assert.equal(index.size, 2);
      assert.deepEqual(notified[1], [e2.id, e3.id]);

      // Create and delete between polls: the entry is never seen.
      const e4 = await store.entries.create(makeEntry(4));
      await store.entries.delete(e4.id);
      await follower.poll();
      assert.equal(index.get(e4.id), undefined);
      assert.equal(follower.cursor, await store.changes.latestId());
    });
  });

  it('ignores node events', async () => {
    await withStore(async (store, clock) => {
      const index = new EntryIndex(SERVER);
      const follower = await ChangeFollower.start(store, index, clock);
      await store.nodes.upsert({
        spiffeId: AGENT,
        attestationType: 'join_token',
        serialNumber: '01',
        newSerialNumber: '',
        expiresAt: T0 + 1000,
        selectors: [],
        banned: false,
        canReattest: false,
        createdAt: T0,
        updatedAt: T0,
      });
      assert.equal(await follower.poll(), 1);
      assert.equal(index.size, 0);
    });
  });

  it('keeps up with more than one batch of events in one poll', async () => {
    await withStore(async (store, clock) => {
      const index = new EntryIndex(SERVER);
      const follower = await ChangeFollower.start(store, index, clock);
      await store.entries.createMany(Array.from({ length: 2500 }, (_, i) => makeEntry(i + 1)));
      assert.equal(await follower.poll(), 2500);
      assert.equal(index.size, 2500);
    });
  });
});

/**
 * A scripted change feed: SQLite serializes writers, so it cannot commit event 5 before event 4.
 * This feed shows the follower exactly the events a test makes visible, as PostgreSQL can when
 * transactions commit out of order. Entries themselves are read from a real SQLite store.
 */
class ScriptedFeed implements Pick<ChangeFeed, 'since' | 'byIds' | 'latestId'> {
  readonly visible = new Map<number, ChangeEvent>();
  readonly byIdsCalls: number[][] = [];

  show(id: number, targetId: string, op: ChangeEvent['op'] = 'create'): void {
    this.visible.set(id, { id, kind: 'entry', targetId, op, createdAt: T0 });
  }

  async since(afterId: number, limit: number): Promise<ChangeEvent[]> {
    return [...this.visible.values()]
      .filter((e) => e.id > afterId)
      .sort((a, b) => a.id - b.id)
      .slice(0, limit);
  }

  async byIds(ids: readonly number[]): Promise<ChangeEvent[]> {
    this.byIdsCalls.push([...ids].sort((a, b) => a - b));
    return ids.flatMap((id) => this.visible.get(id) ?? []);
  }

  async latestId(): Promise<number> {
    return Math.max(0, ...this.visible.keys());
  }
}

async function withScripted(
  fn: (ctx: {
    feed: ScriptedFeed;
    store: Store;
    index: EntryIndex;
    clock: ManualClock;
    put: (k: number) => Promise<Entry>;
  }) => Promise<void>,
): Promise<void> {
  await withStore(async (real, clock) => {
    const feed = new ScriptedFeed();
    // Only the two ports the follower uses; entries are the real SQLite ones.
    const store = { entries: real.entries, changes: feed } as unknown as Store;
    const index = new EntryIndex(SERVER);
    await fn({ feed, store, index, clock, put: (k) => real.entries.create(makeEntry(k)) });
  });
}

describe('ChangeFollower gap handling (scripted feed)', () => {
  it('applies an event that arrives after a later one, when its hole fills', async () => {
    await withScripted(async ({ feed, store, index, clock, put }) => {
      const e1 = await put(1);
      feed.show(1, e1.id);
      const follower = await ChangeFollower.start(store, index, clock);
      assert.equal(follower.cursor, 1);

      // Event 3 commits before event 2.
      const e2 = await put(2);
      const e3 = await put(3);
      feed.show(3, e3.id);
      assert.equal(await follower.poll(), 1);
      assert.equal(follower.cursor, 3);
      assert.equal(index.get(e2.id), undefined, 'not yet visible in the feed');
      assert.ok(index.get(e3.id));

      // Event 2 commits; the next poll looks the hole up by id.
      feed.show(2, e2.id);
      clock.advance(1000);
      assert.equal(await follower.poll(), 1);
      assert.deepEqual(feed.byIdsCalls.at(-1), [2]);
      assert.ok(index.get(e2.id));
      assert.equal(follower.cursor, 3);

      // The hole is closed: later polls no longer ask for it.
      const calls = feed.byIdsCalls.length;
      assert.equal(await follower.poll(), 0);
      assert.equal(feed.byIdsCalls.length, calls);
    });
  });

  it('remembers every id of a multi-id hole and fills them one by one', async () => {
    await withScripted(async ({ feed, store, index, clock, put }) => {
      const follower = await ChangeFollower.start(store, index, clock);
      assert.equal(follower.cursor, 0);
      const [a, b, c, d] = [await put(1), await put(2), await put(3), await put(4)];
      feed.show(4, d.id);
      await follower.poll();
      assert.deepEqual(feed.byIdsCalls, []);
      feed.show(2, b.id);
      await follower.poll();
      assert.deepEqual(feed.byIdsCalls.at(-1), [1, 2, 3]);
      assert.deepEqual([index.get(a.id), !!index.get(b.id)], [undefined, true]);
      feed.show(1, a.id);
      feed.show(3, c.id);
      await follower.poll();
      assert.deepEqual(feed.byIdsCalls.at(-1), [1, 3]);
      assert.equal(index.size, 4);
    });
  });

  it('forgets a hole after GAP_TTL_MS (a rolled-back transaction never fills it)', async () => {
    await withScripted(async ({ feed, store, index, clock, put }) => {
      const follower = await ChangeFollower.start(store, index, clock);
      const [late, other] = [await put(1), await put(2)];
      feed.show(2, other.id);
      await follower.poll(); // hole at 1, seen at T0

      clock.advance(GAP_TTL_MS);
      await follower.poll();
      assert.deepEqual(feed.byIdsCalls.at(-1), [1], 'still looked up at exactly the TTL');

      clock.advance(1);
      const calls = feed.byIdsCalls.length;
      feed.show(1, late.id); // too late: the hole has aged out
      assert.equal(await follower.poll(), 0);
      assert.ok(
        feed.byIdsCalls.slice(calls).every((ids) => !ids.includes(1)),
        'an aged-out hole is not looked up',
      );
      assert.equal(index.get(late.id), undefined);
    });
  });

  it('ages each hole from when it was first seen', async () => {
    await withScripted(async ({ feed, store, index, clock, put }) => {
      const follower = await ChangeFollower.start(store, index, clock);
      const es = [await put(1), await put(2), await put(3), await put(4)];
      feed.show(2, es[1]?.id ?? '');
      await follower.poll(); // hole 1 at T0
      clock.advance(GAP_TTL_MS / 2);
      feed.show(4, es[3]?.id ?? '');
      await follower.poll(); // hole 3 at T0 + TTL/2
      clock.advance(GAP_TTL_MS / 2 + 1);
      feed.show(1, es[0]?.id ?? '');
      feed.show(3, es[2]?.id ?? '');
      await follower.poll();
      assert.deepEqual(feed.byIdsCalls.at(-1), [3]);
      assert.equal(index.get(es[0]?.id ?? ''), undefined);
      assert.ok(index.get(es[2]?.id ?? ''));
    });
  });

  it('applies a delete that fills a hole', async () => {
    await withScripted(async ({ feed, store, index, clock, put }) => {
      const e1 = await put(1);
      const e2 = await put(2);
      const follower = await ChangeFollower.start(store, index, clock);
      assert.equal(index.size, 2);
      feed.show(3, e2.id, 'update');
      await follower.poll();
      // Event 2 (delete of e1) commits late; the entry is gone from the store by then.
      await (store.entries as Store['entries']).delete(e1.id);
      feed.show(2, e1.id, 'delete');
      await follower.poll();
      assert.equal(index.get(e1.id), undefined);
      assert.equal(index.size, 1);
    });
  });
});
