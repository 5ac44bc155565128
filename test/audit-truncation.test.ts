// Black-box: the audit log cannot be cut short unnoticed. A real server (SQLite, then PostgreSQL)
// writes records and signed checkpoints; the test edits the database underneath it as an attacker
// with database access would, and `tessera audit verify` (a real CLI process) must say so.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { auditHash, type AuditRecord } from '../src/core/audit.ts';
import { adminClients } from './helpers/admin.ts';
import { waitFor } from './helpers/ports.ts';
import { createTempDatabase, type TempDatabase } from './helpers/postgres.ts';
import { REPO, type ServerProcess, startServer } from './helpers/server-process.ts';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(server: ServerProcess, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      path.join(REPO, 'bin/tessera'),
      args[1] === 'checkpoint-key' ? args : [...args, '--socket', server.adminSocket],
      { env: { ...process.env, TESSERA_LOG_LEVEL: 'warn' } },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** SQL against the server's database, as someone with access to it (not through the server). */
interface Db {
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

function sqliteDb(server: ServerProcess): Db {
  const db = new DatabaseSync(path.join(server.dataDir, 'datastore.sqlite3'));
  db.exec('PRAGMA busy_timeout = 10000');
  return {
    query: async (sql, params = []) =>
      /^\s*select/i.test(sql)
        ? (db.prepare(sql).all(...(params as never[])) as Record<string, unknown>[])
        : (db.prepare(sql).run(...(params as never[])), []),
    close: async () => db.close(),
  };
}

async function postgresDb(url: string): Promise<Db> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return {
    query: async (sql, params = []) => {
      let n = 0;
      return (
        await c.query(
          sql.replace(/\?/g, () => `$${++n}`),
          params,
        )
      ).rows;
    },
    close: () => c.end(),
  };
}

async function writeRecords(server: ServerProcess, n: number): Promise<void> {
  const admin = adminClients(server.adminSocket);
  for (let i = 0; i < n; i++) await admin.agents.createJoinToken({});
}

async function head(db: Db): Promise<{ seq: number; hash: string }> {
  const [h] = await db.query('select seq, hash from audit_head where id = 1');
  return { seq: Number(h?.seq), hash: String(h?.hash) };
}

const checkpointsFile = (s: ServerProcess) => path.join(s.dataDir, 'audit-checkpoints.jsonl');

/**
 * The copy an operator ships elsewhere (or an HTTP collector keeps): taken before the attack,
 * so the server's later checkpoints of the rewritten log (see the last case) are not in it.
 */
function snapshot(s: ServerProcess): string {
  const copy = path.join(s.dataDir, `checkpoints-copy-${Date.now()}.jsonl`);
  copyFileSync(checkpointsFile(s), copy);
  return copy;
}

/** Waits until the server has signed a checkpoint of the current head. */
async function checkpointOfHead(server: ServerProcess, db: Db): Promise<number> {
  const h = await head(db);
  await waitFor(() => {
    let text = '';
    try {
      text = readFileSync(checkpointsFile(server), 'utf8');
    } catch {
      return false;
    }
    return text.split('\n').some((l) => l.includes(`"seq":${h.seq},`));
  }, 30_000);
  return h.seq;
}

/**
 * The attacker's full rewrite: records after `keep` removed, the record at `editSeq` (if any)
 * changed and every hash from there on recomputed, the head set to the new end. The chain is
 * self-consistent afterwards; only something outside the database can tell.
 */
async function rewrite(db: Db, keep: number, editSeq?: number): Promise<void> {
  await db.query('delete from audit where seq > ?', [keep]);
  const rows = await db.query('select * from audit order by seq');
  let prev = '0'.repeat(64);
  for (const r of rows) {
    const rec = {
      seq: Number(r.seq),
      time: Number(r.time),
      actor: String(r.actor),
      action: String(r.action),
      target: editSeq === Number(r.seq) ? 'nothing-to-see' : String(r.target),
      outcome: String(r.outcome) as AuditRecord['outcome'],
      correlationId: String(r.correlation_id),
      details: JSON.parse(String(r.details)) as Record<string, unknown>,
    };
    const hash = auditHash(rec.seq, prev, rec);
    await db.query('update audit set target = ?, prev_hash = ?, hash = ? where seq = ?', [
      rec.target,
      prev,
      hash,
      rec.seq,
    ]);
    prev = hash;
  }
  await db.query('update audit_head set seq = ?, hash = ? where id = 1', [keep, prev]);
}

function suite(name: string, open: () => Promise<{ server: ServerProcess; db: Db }>): void {
  describe(`audit truncation (${name})`, () => {
    // One server per case: its checkpoint file keeps the evidence of the previous case's edits.
    let server: ServerProcess;
    let db: Db;
    const opened: { server: ServerProcess; db: Db }[] = [];
    const fresh = async () => {
      ({ server, db } = await open());
      opened.push({ server, db });
    };
    after(async () => {
      for (const o of opened) {
        await o.db.close();
        await o.server.stop();
      }
    });

    it('verify names the missing records when the last rows are deleted but the head remains', async () => {
      await fresh();
      await writeRecords(server, 6);
      const ok = await cli(server, 'audit', 'verify');
      assert.equal(ok.code, 0, ok.stderr);
      const { seq } = await head(db);
      await db.query('delete from audit where seq > ?', [seq - 3]);
      const r = await cli(server, 'audit', 'verify');
      assert.equal(r.code, 8, r.stdout + r.stderr);
      assert.equal(r.stdout, '');
      assert.equal(
        r.stderr,
        `error: audit chain broken at seq ${seq - 2}: truncated: records ${seq - 2}..${seq} are missing (the recorded head is seq ${seq})\n`,
      );
      const j = await cli(server, 'audit', 'verify', '--output', 'json');
      assert.equal(j.code, 8);
      const doc = JSON.parse(j.stdout);
      assert.deepEqual(
        { ok: doc.ok, count: doc.count, headSeq: doc.headSeq, missing: doc.missing },
        { ok: false, count: seq - 3, headSeq: seq, missing: { from: seq - 2, to: seq } },
      );
    });

    it('a rewritten head passes the chain alone, but not the signed checkpoints', async () => {
      await fresh();
      await writeRecords(server, 6);
      const signed = await checkpointOfHead(server, db);
      const before = await cli(
        server,
        'audit',
        'verify',
        '--checkpoints',
        checkpointsFile(server),
        '--data-dir',
        server.dataDir,
      );
      assert.equal(before.code, 0, before.stderr);
      assert.match(before.stdout, new RegExp(`checkpoints match, the last at seq ${signed} `));

      const copy = snapshot(server);
      await rewrite(db, signed - 2);
      const plain = await cli(server, 'audit', 'verify');
      assert.equal(plain.code, 0, 'without checkpoints the rewrite is consistent');
      const key = await cli(server, 'audit', 'checkpoint-key', '--data-dir', server.dataDir);
      assert.match(key.stdout, /^-----BEGIN PUBLIC KEY-----\n/);
      const keyFile = path.join(server.dataDir, 'exported-checkpoint-key.pem');
      writeFileSync(keyFile, key.stdout);
      const r = await cli(
        server,
        'audit',
        'verify',
        '--checkpoints',
        copy,
        '--checkpoint-key',
        keyFile,
      );
      assert.equal(r.code, 8, r.stdout + r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `^error: audit chain broken at seq ${signed - 1}: truncated: the checkpoint at seq ${signed} is beyond the end of the log \\(seq ${signed - 2}\\): records ${signed - 1}\\.\\.${signed} are missing\\n$`,
        ),
      );
    });

    it('a chain rewritten to the same length is caught by the checkpoint hash', async () => {
      await fresh();
      await writeRecords(server, 3);
      const signed = await checkpointOfHead(server, db);
      const copy = snapshot(server);
      await rewrite(db, signed, signed - 1);
      const r = await cli(
        server,
        'audit',
        'verify',
        '--checkpoints',
        copy,
        '--data-dir',
        server.dataDir,
      );
      assert.equal(r.code, 8, r.stdout + r.stderr);
      // The first checkpoint at or after the edited record (one may have been signed at it).
      const m =
        /^error: audit chain broken at seq (\d+): the checkpoint at seq (\d+) names another hash: the log was rewritten up to there\n$/.exec(
          r.stderr,
        );
      assert.ok(m && m[1] === m[2] && [signed - 1, signed].includes(Number(m[1])), r.stderr);
    });

    it('the checkpoint file itself shows a head that went backwards while the server ran', async () => {
      // Its own server: the file holds only this case's checkpoints. The head is cut back while
      // the server runs; its next interval checkpoint (the head moved) signs the shorter head
      // after the longer one. Nothing else writes records, so the file's order is fixed.
      await fresh();
      await writeRecords(server, 4);
      const signed = await checkpointOfHead(server, db);
      await rewrite(db, signed - 2);
      const file = checkpointsFile(server);
      const backwards = () => {
        const lines = readFileSync(file, 'utf8').trim().split('\n');
        const at = lines.findIndex((l) => l.includes(`"seq":${signed},`));
        return lines.slice(at + 1).find((l) => l.includes(`"seq":${signed - 2},`));
      };
      await waitFor(() => backwards() !== undefined, 30_000);
      const cut = JSON.parse(backwards() as string) as { time: number };
      const r = await cli(
        server,
        'audit',
        'verify',
        '--checkpoints',
        file,
        '--data-dir',
        server.dataDir,
      );
      assert.equal(r.code, 8, r.stdout + r.stderr);
      assert.equal(
        r.stderr,
        `error: ${file}: the checkpoint at ${new Date(cut.time).toISOString()} names seq ${signed - 2}, after one at seq ${signed}: the log was cut short between them\n`,
      );
    });
  });
}

const fast = { audit: { checkpoints: { interval: '200ms' } } };

suite('SQLite', async () => {
  const server = await startServer({ config: fast });
  return { server, db: sqliteDb(server) };
});

let pgDb: TempDatabase | undefined;
after(() => pgDb?.drop());
suite('PostgreSQL', async () => {
  pgDb = await createTempDatabase('tessera_audit');
  const server = await startServer({ datastoreUrl: pgDb.url, config: fast });
  return { server, db: await postgresDb(pgDb.url) };
});

describe('audit checkpoints at shutdown', () => {
  it('a clean stop signs the final head, even between intervals', async () => {
    const server = await startServer({ config: { audit: { checkpoints: { interval: '24h' } } } });
    try {
      await writeRecords(server, 3);
    } finally {
      assert.equal(await server.stop(), 0);
    }
    const db = sqliteDb(server);
    try {
      const h = await head(db);
      const lines = readFileSync(checkpointsFile(server), 'utf8').trim().split('\n');
      const last = JSON.parse(lines.at(-1) as string) as { seq: number; hash: string };
      assert.deepEqual({ seq: last.seq, hash: last.hash }, h);
      assert.ok(lines.length >= 2, 'one at start, one at shutdown');
    } finally {
      await db.close();
    }
  });
});
