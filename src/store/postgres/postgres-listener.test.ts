// Commit notifications between stores sharing one PostgreSQL database (the other servers'
// view), on the real server at 127.0.0.1:5432: NOTIFY is sent inside the writing transaction,
// received by every other store's listening connection, and the connection comes back after an
// outage and announces a resync. No timing assumptions: every wait has a generous deadline.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createTempDatabase, type TempDatabase } from '../../../test/helpers/postgres.ts';
import { TcpProxy } from '../../../test/helpers/tcp-proxy.ts';
import { openStore } from '../open.ts';
import { entryId, makeEntry } from '../conformance/fixtures.ts';
import type { CommitSource, Store } from '../types.ts';
import { commitChannel } from './postgres-store.ts';

let db: TempDatabase;
let n = 0;

before(async () => {
  db = await createTempDatabase('tessera_listen');
});
after(async () => {
  await db?.drop();
});

/** A fresh schema; its URL through `host` (a proxy) or directly. */
async function freshSchema(): Promise<{ schema: string; url: (host?: string) => string }> {
  const schema = `s${n++}`;
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    await c.query(`create schema ${schema}`);
  } finally {
    await c.end();
  }
  const url = (host = '127.0.0.1:5432') => {
    const u = new URL(db.url);
    u.host = host;
    u.searchParams.set('options', `-c search_path=${schema}`);
    return u.toString();
  };
  return { schema, url };
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Records every delivery to a store's "changes" subscribers. */
function record(s: Store) {
  const calls: CommitSource[] = [];
  const off = s.notifications.subscribe('changes', (_t, source) => calls.push(source));
  const count = (source: CommitSource) => calls.filter((c) => c === source).length;
  return { calls, off, count };
}

/** A raw LISTEN on the schema's channel: sees payloads in the order the database sends them. */
async function rawListener(schema: string) {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  const payloads: string[] = [];
  c.on('notification', (m) => payloads.push(m.payload ?? ''));
  const channel = commitChannel(schema);
  await c.query(`LISTEN ${c.escapeIdentifier(channel)}`);
  let k = 0;
  return {
    payloads,
    /** Sends a marker and waits until it comes back: everything sent before it has arrived. */
    async flush(): Promise<void> {
      const marker = `marker ${k++}`;
      await c.query('select pg_notify($1, $2)', [channel, marker]);
      await until(marker, () => payloads.includes(marker));
    },
    end: () => c.end(),
  };
}

describe('postgres commit notifications across stores', () => {
  it('sends NOTIFY inside the writing transaction: nothing before commit or on rollback', async () => {
    const { schema, url } = await freshSchema();
    const store = await openStore({ kind: 'postgres', url: url() });
    const raw = await rawListener(schema);
    try {
      const changes = () => raw.payloads.filter((p) => p.startsWith('changes '));
      await store.transaction(async (tx) => {
        await tx.entries.create(makeEntry(1));
        await raw.flush();
        assert.deepEqual(changes(), [], 'not sent before the commit');
      });
      await until('the committed notification', () => changes().length === 1);
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.entries.create(makeEntry(2));
          throw new Error('roll back');
        }),
        /roll back/,
      );
      await raw.flush();
      assert.equal(changes().length, 1, 'a rolled-back write is not announced');
    } finally {
      await raw.end();
      await store.close();
    }
  });

  it("wakes another store's subscribers with the change already visible, not its own", async () => {
    const { url } = await freshSchema();
    const [a, b] = await Promise.all([
      openStore({ kind: 'postgres', url: url() }),
      openStore({ kind: 'postgres', url: url() }),
    ]);
    const seenA = record(a);
    const seenB = record(b);
    const readsA: Array<Promise<number>> = [];
    const offRead = a.notifications.subscribe('changes', (_t, source) => {
      if (source === 'remote') readsA.push(a.entries.count());
    });
    try {
      await b.entries.create(makeEntry(1));
      await until('A to hear of B’s commit', () => seenA.count('remote') === 1);
      assert.equal(await readsA[0], 1, 'the entry is visible when A is told');
      // B's listening connection receives notifications in commit order: had it not ignored its
      // own, one would have come before this one from A.
      await a.entries.create(makeEntry(2));
      await until('B to hear of A’s commit', () => seenB.count('remote') === 1);
      assert.deepEqual([seenA.count('local'), seenB.count('local')], [1, 1]);
      assert.equal(seenB.count('remote'), 1);
    } finally {
      offRead();
      seenA.off();
      seenB.off();
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a store in another schema of the same database uses another channel', async () => {
    const one = await freshSchema();
    const two = await freshSchema();
    const b = await openStore({ kind: 'postgres', url: two.url() });
    const rawOne = await rawListener(one.schema);
    const rawTwo = await rawListener(two.schema);
    try {
      await b.entries.create(makeEntry(1));
      await Promise.all([rawOne.flush(), rawTwo.flush()]);
      const changes = (r: { payloads: string[] }) =>
        r.payloads.filter((p) => p.startsWith('changes ')).length;
      assert.deepEqual([changes(rawOne), changes(rawTwo)], [0, 1]);
    } finally {
      await Promise.all([rawOne.end(), rawTwo.end()]);
      await b.close();
    }
  });

  it('after an outage the listener reconnects and announces a resync; nothing is lost', async () => {
    const { url } = await freshSchema();
    const proxy = await new TcpProxy(5432).start();
    const a = await openStore({ kind: 'postgres', url: url(`127.0.0.1:${proxy.port}`) });
    const b = await openStore({ kind: 'postgres', url: url() });
    const seenA = record(a);
    try {
      await b.entries.create(makeEntry(1));
      await until('A to hear of the first write', () => seenA.count('remote') === 1);
      proxy.cut();
      // Written while A cannot listen: PostgreSQL does not keep this notification for A.
      await b.entries.create(makeEntry(2));
      proxy.restore();
      await until('A to reconnect and announce a resync', () => seenA.count('resync') >= 1, 60_000);
      const ids = (await a.changes.since(0, 10)).map((e) => e.targetId);
      assert.deepEqual(ids, [entryId(1), entryId(2)], 'a read on resync catches up');
      // And it listens again.
      await b.entries.create(makeEntry(3));
      await until('A to hear of a write after the outage', () => seenA.count('remote') >= 2);
    } finally {
      seenA.off();
      await Promise.all([a.close(), b.close()]);
      await proxy.close();
    }
  });
});
