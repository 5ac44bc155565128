// Database unreachable: calls fail with Unavailable (not Internal, not a crash); the server
// recovers by itself when the database returns.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Code, ConnectError } from '@connectrpc/connect';
import { adminClients, entry } from './helpers/admin.ts';
import { createTempDatabase, type TempDatabase } from './helpers/postgres.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';
import { TcpProxy } from './helpers/tcp-proxy.ts';

describe('datastore outage (PostgreSQL behind a cuttable proxy)', () => {
  let db: TempDatabase;
  let proxy: TcpProxy;
  let server: ServerProcess;

  before(async () => {
    db = await createTempDatabase();
    proxy = await new TcpProxy(5432).start();
    const url = new URL(db.url);
    url.port = String(proxy.port);
    server = await startServer({ datastoreUrl: url.toString() });
  });

  after(async () => {
    await server?.stop();
    await proxy?.close();
    await db?.drop();
  });

  it('answers Unavailable while the database is away and recovers when it returns', async () => {
    const admin = adminClients(server.adminSocket);
    await admin.entries.batchCreateEntry({
      entries: [entry('spiffe://example.org/before', 'spiffe://example.org/p', ['unix:uid:1'])],
    });
    proxy.cut();
    for (const call of [
      () => admin.entries.listEntries({}),
      () =>
        admin.entries.batchCreateEntry({
          entries: [entry('spiffe://example.org/during', 'spiffe://example.org/p', ['unix:uid:1'])],
        }),
      () => admin.agents.createJoinToken({}),
    ]) {
      const e = await call().then(
        () => null,
        (err: unknown) => ConnectError.from(err),
      );
      assert.ok(e, 'the call should fail while the database is unreachable');
      assert.equal(Code[e.code], 'Unavailable', e.message);
    }
    const ready = await fetch(`http://${server.healthAddr}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal((await fetch(`http://${server.healthAddr}/healthz`)).status, 200);

    proxy.restore();
    let recovered = false;
    for (let i = 0; i < 100 && !recovered; i++) {
      try {
        await admin.entries.listEntries({});
        recovered = true;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.ok(recovered, 'the server recovered');
    const list = await admin.entries.listEntries({ pageSize: 100 });
    assert.deepEqual(
      list.entries.map((e) => e.spiffeId),
      ['spiffe://example.org/before'],
    );
    assert.equal(server.proc.exitCode, null, 'the server kept running');
  });
});
