// Black-box: `tessera audit list --follow` against a real server process streams the audit
// record of an entry created after it started, and exits 0 on SIGINT and SIGTERM.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminClients, entry, type AdminClients } from './helpers/admin.ts';
import { startCli } from './helpers/cli-process.ts';
import { waitFor } from './helpers/ports.ts';
import { createTempDatabase, type TempDatabase } from './helpers/postgres.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';

const PARENT = 'spiffe://example.org/spire/server';

describe('audit list --follow', () => {
  let server: ServerProcess;
  let admin: AdminClients;

  before(async () => {
    server = await startServer();
    admin = adminClients(server.adminSocket);
  });
  after(async () => {
    await server?.stop();
  });

  const createEntry = async (name: string) => {
    const r = await admin.entries.batchCreateEntry({
      entries: [entry(`spiffe://example.org/${name}`, PARENT, ['unix:uid:4242'])],
    });
    const id = r.results[0]?.entry?.id;
    assert.ok(id, `entry ${name} created`);
    return id;
  };

  it('--output json: one JSON object per line, new records only, exit 0 on SIGTERM', async () => {
    const before = await createEntry('before-follow');
    const f = startCli(
      ['audit', 'list', '--follow', '--output', 'json', '--action', 'entry.create'],
      { TESSERA_ADMIN_SOCKET: server.adminSocket },
    );
    // It follows from the end of the log as it was when it connected, which the test cannot
    // see: create entries until the first record shows up.
    const created: string[] = [];
    await waitFor(
      async () => {
        if (f.stdout().includes('"entry.create"')) return true;
        created.push(await createEntry(`w${created.length}`));
        return false;
      },
      60_000,
      500,
    );
    const lines = f.stdout().trim().split('\n');
    const records = lines.map(
      (l) => JSON.parse(l) as { seq: number; action: string; target: string },
    );
    for (const r of records) {
      assert.equal(r.action, 'entry.create');
      assert.ok(created.includes(r.target), `${r.target} was created while following`);
    }
    assert.ok(
      !records.some((r) => r.target === before),
      'records from before --follow are not replayed',
    );
    const id = await createEntry('after-follow');
    await f.waitForOutput('the new entry', (out) => out.includes(id));
    const seqs = f
      .stdout()
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { seq: number }).seq);
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
      'ascending',
    );
    assert.equal(new Set(seqs).size, seqs.length, 'no record twice');
    assert.equal(await f.stop('SIGTERM'), 0, f.stderr());
  });

  it('--after replays from a sequence number, then follows; exit 0 on SIGINT', async () => {
    const tail = await admin.audit.listAuditRecords({ tail: true, limit: 1 });
    const last = Number(tail.records[0]?.seq ?? 0n);
    const f = startCli(['audit', 'list', '--follow', '--after', String(last - 1)], {
      TESSERA_ADMIN_SOCKET: server.adminSocket,
    });
    await f.waitForOutput('the replayed record', (out) =>
      out.split('\n').some((l) => l.startsWith(`${last}  `)),
    );
    assert.match(f.stdout(), /^SEQ {2}TIME {2}ACTOR {2}ACTION/);
    const id = await createEntry('after-replay');
    await f.waitForOutput('the new record', (out) => out.includes(id));
    assert.equal(await f.stop('SIGINT'), 0, f.stderr());
  });

  it('refuses --tail and --limit with --follow', async () => {
    for (const flag of [['--tail'], ['--limit', '5']]) {
      const f = startCli(['audit', 'list', '--follow', ...flag], {
        TESSERA_ADMIN_SOCKET: server.adminSocket,
      });
      assert.equal(await f.exited(), 2);
      assert.match(f.stderr(), new RegExp(`error: ${flag[0]} cannot be combined with --follow`));
    }
  });
});

describe('audit list --follow with two servers sharing PostgreSQL', () => {
  let db: TempDatabase;
  let a: ServerProcess;
  let b: ServerProcess;

  before(async () => {
    db = await createTempDatabase();
    a = await startServer({ datastoreUrl: db.url });
    b = await startServer({ datastoreUrl: db.url });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await db?.drop();
  });

  it("a follower on one server sees the other server's records", async () => {
    const tail = await adminClients(a.adminSocket).audit.listAuditRecords({ tail: true, limit: 1 });
    const f = startCli(
      [
        'audit',
        'list',
        '--follow',
        '--output',
        'json',
        '--after',
        String(tail.records[0]?.seq ?? 0n),
      ],
      { TESSERA_ADMIN_SOCKET: a.adminSocket },
    );
    // First a record through A itself, so the follower is known to be streaming...
    const first = await adminClients(a.adminSocket).entries.batchCreateEntry({
      entries: [entry('spiffe://example.org/from-a', PARENT, ['unix:uid:4243'])],
    });
    const firstId = first.results[0]?.entry?.id;
    assert.ok(firstId);
    await f.waitForOutput("server A's own record", (out) => out.includes(firstId));
    // ...then one through B only: A learns of it by reading the database (the poll).
    const r = await adminClients(b.adminSocket).entries.batchCreateEntry({
      entries: [entry('spiffe://example.org/from-b', PARENT, ['unix:uid:4243'])],
    });
    const id = r.results[0]?.entry?.id;
    assert.ok(id);
    await f.waitForOutput("server B's entry.create record", (out) => out.includes(id));
    const rec = f
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; target: string })
      .find((x) => x.target === id);
    assert.equal(rec?.action, 'entry.create');
    assert.equal(await f.stop('SIGTERM'), 0, f.stderr());
  });
});
