// Black box: the README's tour, as a new user ran it when a second server deleted the first
// one's keys. A SQLite server runs (`server run --trust-domain example.org`), then the README's
// PostgreSQL command is started from the same directory. The second refuses (the data directory
// is locked, naming the first one's pid) before touching anything; the first keeps serving, and
// after a restart with only what a user would pass it starts with its keys.
//
// Paths and ports are passed explicitly, identical for both servers, as the defaults would make
// them (the defaults themselves are another test's business), so nothing here depends on them.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { runCli } from './helpers/cli-process.ts';
import { freePort, waitFor } from './helpers/ports.ts';
import { createTempDatabase, type TempDatabase } from './helpers/postgres.ts';
import { CLI } from './helpers/server-process.ts';

describe('README: a SQLite server, then the PostgreSQL command from the same directory', () => {
  let cwd: string;
  let db: TempDatabase;
  let flags: string[];
  let health: string;
  let first: { proc: ChildProcess; out: () => string } | undefined;

  before(async () => {
    cwd = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'tessera-readme-')));
    db = await createTempDatabase();
    health = `127.0.0.1:${await freePort()}`;
    flags = [
      '--data-dir',
      '.tessera/server',
      '--admin-socket',
      '.tessera/server/admin.sock',
      '--listen',
      `127.0.0.1:${await freePort()}`,
      '--health-listen',
      health,
    ];
  });
  after(async () => {
    if (first && first.proc.exitCode === null && first.proc.signalCode === null) {
      first.proc.kill('SIGKILL');
    }
    await db?.drop();
    rmSync(cwd, { recursive: true, force: true });
  });

  /** `bin/tessera server run --trust-domain example.org [extra]` in cwd, until ready. */
  const serve = async (...extra: string[]) => {
    const proc = spawn(
      process.execPath,
      [CLI, 'server', 'run', '--trust-domain', 'example.org', ...flags, ...extra],
      {
        cwd,
        env: { ...process.env, TESSERA_LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const gone = new Promise<never>((_, reject) =>
      proc.once('exit', (code) => reject(new Error(`server exited (${code}): ${out}`))),
    );
    gone.catch(() => {});
    await Promise.race([
      waitFor(async () => (await fetch(`http://${health}/readyz`)).status === 200, 60_000),
      gone,
    ]);
    return { proc, out: () => out };
  };
  const stop = (p: ChildProcess) =>
    new Promise<number | null>((resolve) => {
      p.once('exit', (code) => resolve(code));
      p.kill('SIGTERM');
    });
  const admin = (...args: string[]) =>
    runCli([...args, '--socket', '.tessera/server/admin.sock'], { cwd });
  /** Every key file and a hash of its content. */
  const keyFiles = () => {
    const dir = path.join(cwd, '.tessera/server/keys');
    return Object.fromEntries(
      readdirSync(dir)
        .sort()
        .map((f) => [
          f,
          createHash('sha256')
            .update(readFileSync(path.join(dir, f)))
            .digest('hex'),
        ]),
    );
  };

  it('the second refuses; the first keeps serving and restarts with its keys', async () => {
    first = await serve();
    const keys = keyFiles();
    assert.equal(Object.keys(keys).length, 2, 'an X.509 and a JWT authority key');
    const bundle = await admin('bundle', 'show', '--format', 'pem');
    assert.equal(bundle.code, 0, bundle.stderr);

    const second = await runCli(
      ['server', 'run', '--trust-domain', 'example.org', ...flags, '--datastore-url', db.url],
      { cwd },
    );
    assert.equal(second.code, 7, second.stderr);
    assert.equal(
      second.stderr,
      `error: data directory ${path.join(cwd, '.tessera/server')} is in use by another Tessera ` +
        `process (pid ${first.proc.pid}): stop it first, or give this process its own --data-dir\n`,
    );
    // It stopped before touching anything: no schema in its database, the keys as they were.
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      const tables = await c.query(
        "select count(*)::int as n from information_schema.tables where table_schema = 'public'",
      );
      assert.equal(tables.rows[0].n, 0);
    } finally {
      await c.end();
    }
    assert.deepEqual(keyFiles(), keys);

    // The first server still answers on its admin socket and signs with its keys.
    const health1 = await admin('healthcheck');
    assert.equal(health1.code, 0, health1.stderr);
    const minted = await admin(
      'jwt',
      'mint',
      '--spiffe-id',
      'spiffe://example.org/web',
      '--audience',
      'db',
    );
    assert.equal(minted.code, 0, minted.stderr);

    assert.equal(await stop(first.proc), 0, first.out());
    first = await serve();
    assert.deepEqual(keyFiles(), keys);
    const again = await admin('bundle', 'show', '--format', 'pem');
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, bundle.stdout);
    const health2 = await admin('healthcheck');
    assert.equal(health2.code, 0, health2.stderr);
    assert.equal(await stop(first.proc), 0, first.out());
    assert.doesNotMatch(first.out(), /missing|error/i);
  });
});
