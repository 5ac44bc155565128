// Black-box: Redis and MySQL/MariaDB through the agent's local listeners (docs/injection.md
// "Redis", "MySQL"). A real server, a real agent (proxy.listeners in its config file), the real
// CLI (helpers/proxy-stack.ts), and the Redis (:6379) and MariaDB (127.0.0.1:3306) running on this machine, each with a
// user this test creates (and removes) whose password only Tessera's secret store holds.
// Unmodified clients connect to 127.0.0.1:PORT knowing no password:
// - redis-cli and the `redis` npm client act as the ACL user (ACL WHOAMI, its key pattern);
// - the `mariadb` CLI and `mysql2` are logged in as the MariaDB user;
// - with the access policies deleted, Redis clients get -NOPERM and MySQL clients ERR 1045
//   (SQLSTATE 28000), each naming the reason; no password is in the agent's or server's log.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { createClient } from 'redis';
import { waitFor } from './helpers/ports.ts';
import {
  grant,
  login,
  startProxyStack,
  staticLogin,
  type ProxyStack,
} from './helpers/proxy-stack.ts';
import { CHAINED, DEADLINE_MS } from './helpers/serving-agent.ts';

const run = promisify(execFile);
const ME = 'spiffe://example.org/proxy/cache-and-db-client';
const tag = randomBytes(4).toString('hex');
const REDIS_USER = `tessera_proxy_${tag}`;
const REDIS_PASSWORD = `rp-${randomBytes(18).toString('base64url')}`;
const KEYS = `proxy-${tag}:`;
const MYSQL_USER = `tessera_proxy_${tag}`;
const MYSQL_PASSWORD = `mp-${randomBytes(18).toString('base64url')}`;
const DB = `proxy_${tag}`;
const MYSQL_ADMIN = { host: '127.0.0.1', port: 3306, user: 'root', password: '' };

/** Runs a client command; its output (stdout and stderr) and whether it exited 0. */
async function client(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const { stdout, stderr } = await run(cmd, args, { timeout: 60_000 });
    return { ok: true, out: (stdout + stderr).trim() };
  } catch (e) {
    const { stdout = '', stderr = '' } = e as { stdout?: string; stderr?: string };
    return { ok: false, out: (stdout + stderr).trim() || String(e) };
  }
}

const redisCli = (port: number, ...command: string[]) =>
  client('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...command]);

// --no-defaults: no option file; no -p: the client sends no password at all.
const mariadbCli = (port: number, sql: string) =>
  client('mariadb', [
    '--no-defaults',
    ...['-h', '127.0.0.1', '-P', String(port), '-u', 'whoever', '-D', DB],
    ...['--connect-timeout=20', '-N', '-B', '-e', sql],
  ]);

/** Retries `attempt` until it reports ok (the agent learns server workloads shortly after start). */
async function eventually(
  attempt: () => Promise<{ ok: boolean; out: string }>,
): Promise<{ ok: boolean; out: string }> {
  let last = { ok: false, out: '' };
  await waitFor(async () => {
    last = await attempt();
    return last.ok;
  }, DEADLINE_MS).catch(() => assert.fail(`never succeeded: ${last.out}`));
  return last;
}

describe('proxy: Redis and MySQL through local listeners', CHAINED, () => {
  let stack: ProxyStack;
  let redisPort: number;
  let mysqlPort: number;

  /** Commands to the Redis on :6379 as its default user; the last reply. */
  async function redisAdmin(...commands: string[][]): Promise<unknown> {
    const r = createClient({ url: 'redis://127.0.0.1:6379' });
    r.on('error', () => {});
    await r.connect();
    try {
      let reply: unknown;
      for (const c of commands) reply = await r.sendCommand(c);
      return reply;
    } finally {
      r.destroy();
    }
  }

  async function mysqlAdmin(...statements: string[]): Promise<void> {
    const c = await mysql.createConnection(MYSQL_ADMIN);
    try {
      for (const s of statements) await c.query(s);
    } finally {
      await c.end();
    }
  }

  before(async () => {
    await redisAdmin(
      ['ACL', 'SETUSER', REDIS_USER, 'reset', 'on', `>${REDIS_PASSWORD}`],
      ['ACL', 'SETUSER', REDIS_USER, `~${KEYS}*`, '+@all'],
    );
    await mysqlAdmin(
      `create database ${DB}`,
      `create user '${MYSQL_USER}'@'%' identified by '${MYSQL_PASSWORD}'`,
      `create user '${MYSQL_USER}'@'localhost' identified by '${MYSQL_PASSWORD}'`,
      `grant all on ${DB}.* to '${MYSQL_USER}'@'%'`,
      `grant all on ${DB}.* to '${MYSQL_USER}'@'localhost'`,
    );

    stack = await startProxyStack({
      name: 'redis-mysql',
      server: { config: { log_level: 'debug' } },
      clients: [ME],
      secrets: {
        'cache-login': login(REDIS_USER, REDIS_PASSWORD),
        'db-login': login(MYSQL_USER, MYSQL_PASSWORD),
      },
      access: {
        server_workloads: [
          {
            name: 'cache',
            host: '127.0.0.1',
            port: 6379,
            protocol: 'redis',
            present: 'redis-auth',
          },
          {
            name: 'db',
            host: '127.0.0.1',
            port: 3306,
            protocol: 'mysql',
            present: 'mysql-password',
          },
        ],
        credential_providers: [staticLogin('cache-login'), staticLogin('db-login')],
        access_policies: [grant(ME, 'cache', 'cache-login'), grant(ME, 'db', 'db-login')],
      },
      listeners: ['cache', 'db'],
      agent: { env: { TESSERA_LOG_LEVEL: 'debug' } },
    });
    redisPort = stack.port('cache');
    mysqlPort = stack.port('db');
  });

  after(async () => {
    await stack?.stop();
    await redisAdmin(['ACL', 'DELUSER', REDIS_USER], ['DEL', `${KEYS}a`]).catch(() => {});
    await mysqlAdmin(
      `drop user if exists '${MYSQL_USER}'@'%'`,
      `drop user if exists '${MYSQL_USER}'@'localhost'`,
      `drop database if exists ${DB}`,
    ).catch(() => {});
  });

  it('redis-cli and the redis client act as the ACL user only Tessera knows', async () => {
    const who = await eventually(async () => {
      const r = await redisCli(redisPort, 'ACL', 'WHOAMI');
      return { ok: r.ok && r.out === REDIS_USER, out: r.out };
    });
    assert.equal(who.out, REDIS_USER);
    assert.equal((await redisCli(redisPort, 'SET', `${KEYS}a`, 'one')).out, 'OK');
    // The ACL user's key pattern holds: Redis itself refuses another key.
    assert.match((await redisCli(redisPort, 'GET', 'elsewhere')).out, /NOPERM/);

    const r = createClient({ url: `redis://127.0.0.1:${redisPort}` });
    r.on('error', () => {});
    await r.connect();
    try {
      assert.equal(await r.sendCommand(['ACL', 'WHOAMI']), REDIS_USER);
      assert.equal(await r.get(`${KEYS}a`), 'one');
      // A client-side AUTH is replaced by the injected one: the identity stays.
      assert.equal(await r.sendCommand(['AUTH', 'default', 'a-guess']), 'OK');
      assert.equal(await r.sendCommand(['ACL', 'WHOAMI']), REDIS_USER);
      // RESET would make the connection Redis's `default` user: the proxy closes it instead.
      await assert.rejects(r.sendCommand(['RESET']));
    } finally {
      r.destroy();
    }
    assert.equal((await redisCli(redisPort, 'ACL', 'WHOAMI')).out, REDIS_USER);
  });

  it('the mariadb CLI and mysql2 are logged in as the MariaDB user only Tessera knows', async () => {
    const who = await eventually(() => mariadbCli(mysqlPort, 'select current_user()'));
    assert.match(who.out, new RegExp(`^${MYSQL_USER}@`));
    assert.equal(
      (
        await mariadbCli(
          mysqlPort,
          'create table t (n int); insert into t values (7); select n from t',
        )
      ).out,
      '7',
    );

    const c = await mysql.createConnection({
      host: '127.0.0.1',
      port: mysqlPort,
      user: 'whoever',
      database: DB,
      connectTimeout: 20_000,
    });
    try {
      const [rows] = await c.query('select current_user() as u, database() as d');
      const [row] = rows as Array<{ u: string; d: string }>;
      assert.match(row?.u ?? '', new RegExp(`^${MYSQL_USER}@`));
      assert.equal(row?.d, DB);
      // Prepared statements (the binary protocol) are relayed as is.
      const [prepared] = await c.execute('select n + ? as m from t', [1]);
      assert.deepEqual(prepared, [{ m: 8 }]);
    } finally {
      await c.end();
    }
    assert.ok(
      !stack.agent.output().includes(REDIS_PASSWORD) &&
        !stack.agent.output().includes(MYSQL_PASSWORD),
    );
    assert.ok(
      !stack.server.output().includes(REDIS_PASSWORD) &&
        !stack.server.output().includes(MYSQL_PASSWORD),
    );
  });

  it('answers -NOPERM and ERR 1045 naming the reason once the policies are deleted', async () => {
    await stack.ok('access-policy', 'delete', 'me-cache');
    await stack.ok('access-policy', 'delete', 'me-db');

    const noperm = await eventually(async () => {
      const r = await redisCli(redisPort, 'PING');
      return { ok: /NOPERM/.test(r.out), out: r.out };
    });
    assert.match(noperm.out, /NOPERM .*no-matching-policy/);
    const r = createClient({
      url: `redis://127.0.0.1:${redisPort}`,
      disableClientInfo: true,
      socket: { reconnectStrategy: false },
    });
    r.on('error', () => {});
    const denied = await r
      .connect()
      .then(() => r.sendCommand(['PING']))
      .then(
        (v) => assert.fail(`PING answered ${String(v)}`),
        (e: Error) => e,
      );
    r.destroy();
    assert.match(denied.message, /^NOPERM .*no-matching-policy/);

    const refused = await eventually(async () => {
      const m = await mariadbCli(mysqlPort, 'select 1');
      return { ok: /ERROR 1045/.test(m.out), out: m.out };
    });
    assert.match(refused.out, /ERROR 1045 \(28000\).*no-matching-policy/);
    const err = await mysql
      .createConnection({
        host: '127.0.0.1',
        port: mysqlPort,
        user: 'whoever',
        connectTimeout: 20_000,
      })
      .then(
        (c) => c.end().then(() => assert.fail('mysql2 logged in without a policy')),
        (e: Error & { errno?: number; sqlState?: string }) => e,
      );
    assert.equal(err.errno, 1045, String(err));
    assert.equal(err.sqlState, '28000');
    assert.match(err.message, /no-matching-policy/);
    assert.ok(
      !stack.agent.output().includes(REDIS_PASSWORD) &&
        !stack.agent.output().includes(MYSQL_PASSWORD),
    );
  });
});
