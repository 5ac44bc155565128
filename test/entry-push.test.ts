// A committed entry change reaches the server's index through the commit notification, not the
// periodic poll: the poll interval is set to an hour here, so only the push path can deliver it.
// One server on SQLite (its own write), and two servers sharing PostgreSQL (a write through the
// other one, LISTEN/NOTIFY). Deadlines are generous: latency is the bench's business.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { loadServerConfig, TesseraServer } from '../src/server/compose/server.ts';
import { adminClients, entry } from './helpers/admin.ts';
import { createTempDatabase } from './helpers/postgres.ts';

const HOUR = 3_600_000;

async function startInProcess(datastoreUrl?: string) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'tessera-push-'));
  const config = loadServerConfig(
    {
      trustDomain: 'example.org',
      dataDir,
      listen: '127.0.0.1:0',
      healthListen: '',
      ...(datastoreUrl ? { datastoreUrl } : {}),
    },
    {},
  );
  const server = await TesseraServer.create(config, {
    logger: pino({ level: 'silent' }),
    syncIntervalMs: HOUR,
  });
  const ac = new AbortController();
  let listening!: () => void;
  const ready = new Promise<void>((r) => (listening = r));
  const done = server.run(ac.signal, () => listening());
  await ready;
  return {
    server,
    admin: adminClients(config.admin_socket),
    stop: async () => {
      ac.abort();
      await done;
    },
  };
}

async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The server's count of follower wake-ups from this source (tessera_change_notifications_total). */
async function wakes(server: TesseraServer, source: string): Promise<number> {
  const m = await server.metrics.changeNotifications.get();
  return m.values.find((v) => v.labels.source === source)?.value ?? 0;
}

const AGENT = 'spiffe://example.org/spire/agent/join_token/push';

describe('entry changes are pushed to the server index (poll interval: 1 h)', () => {
  it('one server on SQLite: its own creates and deletes reach its index', async () => {
    const s = await startInProcess();
    try {
      const created = await s.admin.entries.batchCreateEntry({
        entries: [entry('spiffe://example.org/push/1', AGENT, ['unix:uid:1'])],
      });
      const id = created.results[0]!.entry!.id;
      await until('the new entry in the index', () => s.server.index.ids().includes(id));
      // A burst: every change arrives, polls coalesced.
      const burst = await s.admin.entries.batchCreateEntry({
        entries: Array.from({ length: 20 }, (_, i) =>
          entry(`spiffe://example.org/push/b${i}`, AGENT, [`unix:uid:${100 + i}`]),
        ),
      });
      const ids = burst.results.map((r) => r.entry!.id);
      await Promise.all(ids.map((i) => s.admin.entries.batchDeleteEntry({ ids: [i] })));
      await s.admin.entries.batchDeleteEntry({ ids: [id] });
      await until('the deletions in the index', () => s.server.index.size === 0);
      assert.ok((await wakes(s.server, 'local')) >= 1);
    } finally {
      await s.stop();
    }
  });

  it('two servers on PostgreSQL: a write through B reaches A’s index', async () => {
    const db = await createTempDatabase('tessera_push');
    try {
      const a = await startInProcess(db.url);
      const b = await startInProcess(db.url);
      try {
        const created = await b.admin.entries.batchCreateEntry({
          entries: [entry('spiffe://example.org/push/pg', AGENT, ['unix:uid:2'])],
        });
        const id = created.results[0]!.entry!.id;
        await until('B’s entry in A’s index', () => a.server.index.ids().includes(id));
        await b.admin.entries.batchDeleteEntry({ ids: [id] });
        await until('B’s deletion in A’s index', () => !a.server.index.ids().includes(id));
        assert.ok((await wakes(a.server, 'remote')) >= 1);
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
    } finally {
      await db.drop();
    }
  });
});
