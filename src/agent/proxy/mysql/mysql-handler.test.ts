// The MySQL handler between unmodified clients (the `mariadb` CLI, the `mysql2` npm driver) and
// the real MariaDB on 127.0.0.1:3306 (mysql_native_password), with a user and password only this
// test knows. The ProxyConnection is a stand-in (fixed credential); caching_sha2_password is
// covered in caching-sha2.test.ts (MariaDB 10.11 does not implement it server-side).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import type { Credential } from '../../../core/access.ts';
import { CredentialDeniedError } from '../../credentials/credential-service.ts';
import { startStandIn, type StandIn } from '../testing/stand-in-listener.ts';
import { createMysqlHandler } from './mysql-handler.ts';
import { packet } from './packets.ts';

const run = promisify(execFile);
const USER = `tessera_t_${randomBytes(4).toString('hex')}`;
const DB = USER;
const PASSWORD = randomBytes(18).toString('base64url');
const handler = createMysqlHandler({ timeoutMs: 1500 });
const password = (username: string, pw: string): Credential => ({
  value: { kind: 'password', username, password: pw },
  expiresAt: null,
  leaseId: '',
});

async function root(sql: string): Promise<void> {
  await run('mariadb', ['-h', '127.0.0.1', '-u', 'root', '-e', sql]);
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const r = await run(
    'mariadb',
    ['-h', '127.0.0.1', '-P', String(port), '--connect-timeout=20', '-N', '-B', ...args],
    { timeout: 30_000 },
  ).catch((e: { stdout: string; stderr: string }) => e);
  return (r.stdout + r.stderr).trim();
}

/** Reads the greeting, sends `bytes`, returns what comes back until the close (bounded). */
function raw(port: number, bytes: Buffer | undefined): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    let greeted = false;
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no close within 20 s: ${Buffer.concat(got).toString('hex')}`));
    }, 20_000);
    s.on('data', (c: Buffer) => {
      if (!greeted) {
        greeted = true;
        if (bytes) s.write(bytes);
        return;
      }
      got.push(c);
    });
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(got));
    });
  });
}

/** An ERR packet's sequence number, code, SQLSTATE and message. */
function err(b: Buffer): [number, number, string, string] {
  assert.equal(b[4], 0xff, `an ERR packet: ${b.toString('hex')}`);
  return [b[3] ?? -1, b.readUInt16LE(5), b.subarray(8, 13).toString(), b.subarray(13).toString()];
}

let proxy: StandIn;

before(async () => {
  await root(
    `CREATE DATABASE ${DB}; CREATE USER '${USER}'@'127.0.0.1' IDENTIFIED BY '${PASSWORD}'; GRANT ALL ON ${DB}.* TO '${USER}'@'127.0.0.1'`,
  );
  proxy = await startStandIn({
    handler,
    server: { host: '127.0.0.1', port: 3306, protocol: 'mysql' },
    credential: password(USER, PASSWORD),
  });
});

after(async () => {
  await proxy.close();
  await root(`DROP USER '${USER}'@'127.0.0.1'; DROP DATABASE ${DB}`);
  assert.ok(
    proxy.logs.every((l) => !l.includes(PASSWORD)),
    'the password is never logged',
  );
});

test('the mariadb client without a password is the injected user, in its database', async () => {
  assert.equal(
    await cli(proxy.port, '-u', 'whoever', DB, '-e', 'select current_user(), database()'),
    `${USER}@127.0.0.1\t${DB}`,
  );
  assert.equal(
    await cli(
      proxy.port,
      '-u',
      'x',
      '-pmade-up',
      DB,
      '-e',
      'create table t (v int); insert into t values (7); select v from t',
    ),
    '7',
  );
});

test('mysql2 with a made-up password is the injected user; its session works', async () => {
  const c = await mysql.createConnection({
    host: '127.0.0.1',
    port: proxy.port,
    user: 'app',
    password: 'made-up',
    database: DB,
    connectTimeout: 20_000,
  });
  try {
    const [rows] = await c.query('select current_user() as u, database() as d');
    assert.deepEqual(rows, [{ u: `${USER}@127.0.0.1`, d: DB }]);
    const [big] = await c.query('select repeat(?, 100000) as s', ['ab']);
    assert.equal((big as { s: string }[])[0]?.s.length, 200_000);
  } finally {
    await c.end();
  }
});

test('a password credential without a username logs in as the client-named user', async () => {
  const anon = await startStandIn({
    handler,
    server: { host: '127.0.0.1', port: 3306, protocol: 'mysql' },
    credential: password('', PASSWORD),
  });
  try {
    assert.equal(
      await cli(anon.port, '-u', USER, '-e', 'select current_user()'),
      `${USER}@127.0.0.1`,
    );
  } finally {
    await anon.close();
  }
});

test('a denial is ERR 1045 (28000) naming the failed condition', async () => {
  const denied = await startStandIn({
    handler,
    server: { name: 'orders-db', host: '127.0.0.1', port: 3306, protocol: 'mysql' },
    credential: new CredentialDeniedError('orders-db', 'spiffe://example.org/app', {
      reason: 'condition-false',
      policy: 'app-to-db',
      failedCondition: '"team:orders" in client.selectors',
      correlationId: 'c1',
    }),
  });
  try {
    assert.equal(
      await cli(denied.port, '-u', 'app', '-e', 'select 1'),
      'ERROR 1045 (28000): access to server workload "orders-db" denied for spiffe://example.org/app: condition-false (policy "app-to-db", failed condition: "team:orders" in client.selectors)',
    );
  } finally {
    await denied.close();
  }
});

test('a wrong injected credential is ERR 1045 without the server words', async () => {
  const wrong = await startStandIn({
    handler,
    server: { name: 'orders-db', host: '127.0.0.1', port: 3306, protocol: 'mysql' },
    credential: password(USER, 'not-the-password'),
  });
  try {
    assert.equal(
      await cli(wrong.port, '-u', 'app', '-e', 'select 1'),
      'ERROR 1045 (28000): tessera proxy: server workload "orders-db" refused the injected credential',
    );
  } finally {
    await wrong.close();
  }
});

test('bad handshakes are refused cleanly; the proxy keeps serving', async () => {
  assert.deepEqual(err(await raw(proxy.port, packet(1, Buffer.from('garbage')))), [
    2,
    1043,
    '08S01',
    'Bad handshake: handshake response: the client does not speak protocol 4.1',
  ]);
  const truncated = Buffer.concat([Buffer.alloc(32), Buffer.from('user-without-end')]);
  truncated.writeUInt32LE(0x200 | 0x8000, 0);
  assert.deepEqual(err(await raw(proxy.port, packet(1, truncated))), [
    2,
    1043,
    '08S01',
    'Bad handshake: handshake response: truncated',
  ]);
  const oversized = Buffer.from([0xff, 0xff, 0xff, 1]);
  assert.deepEqual(err(await raw(proxy.port, oversized)), [
    2,
    1153,
    '08S01',
    'Bad handshake: the handshake response is too large',
  ]);
  const ssl = Buffer.alloc(32);
  ssl.writeUInt32LE(0x200 | 0x800, 0);
  assert.equal(err(await raw(proxy.port, packet(1, ssl)))[1], 1043);
  // A client that never answers the greeting is closed after the handshake timeout.
  assert.equal(err(await raw(proxy.port, undefined))[1], 1043);
  assert.equal(await cli(proxy.port, '-u', 'app', '-e', 'select 1'), '1');
});
