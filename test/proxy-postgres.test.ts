// Black-box: PostgreSQL through the agent's local listener (docs/injection.md "PostgreSQL"). A
// real server, a real agent (proxy.listeners in its config file), the real CLI, and one real,
// throwaway PostgreSQL cluster that checks passwords (the shared one on 5432 trusts local
// connections): TLS on with a test CA's certificate, and per user in pg_hba scram-sha-256, md5,
// or scram over TLS only (hostssl). Unmodified clients — psql and the `pg` driver — connect to
// 127.0.0.1:PORT with no password at all:
// - they are logged in as the static secret's user (its password only in Tessera's secret
//   store), and as a postgres-dynamic lease's own role through a second listener;
// - an md5 user (password stored as md5) and a hostssl-only user through a server workload
//   created with `--tls --tls-ca FILE` (the session is TLS upstream); the same with a CA that
//   does not verify the server: FATAL 08001 naming it, no password sent, the agent serving on;
// - the audit log holds access.request → access.authorization → access.credential under one
//   correlation id for a connection, both for a release and for a use of the agent's cache
//   (cached: true);
// - no password is in the agent's log, the server's log or the audit log;
// - with the access policy deleted, the client gets a FATAL with SQLSTATE 28000 naming the reason.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import {
  startPasswordPostgres,
  type PostgresServer,
} from '../src/plugins/credential-providers/testing/password-postgres.ts';
import { makeTlsFiles } from './helpers/https.ts';
import { waitFor } from './helpers/ports.ts';
import {
  grant,
  login,
  startProxyStack,
  staticLogin,
  type AuditRecord,
  type ProxyStack,
} from './helpers/proxy-stack.ts';
import { CHAINED, DEADLINE_MS } from './helpers/serving-agent.ts';

const run = promisify(execFile);
const ME = 'spiffe://example.org/proxy/orders-api';
const tag = randomBytes(4).toString('hex');
const APP_USER = `legacy_app_${tag}`;
const APP_PASSWORD = `pg-${randomBytes(18).toString('base64url')}`;
const ADMIN_USER = `tessera_admin_${tag}`;
const ADMIN_PASSWORD = `pga-${randomBytes(18).toString('base64url')}`;
const MD5_USER = `md5_app_${tag}`;
const MD5_PASSWORD = `pgm-${randomBytes(18).toString('base64url')}`;
const TLS_USER = `tls_app_${tag}`;
const TLS_PASSWORD = `pgt-${randomBytes(18).toString('base64url')}`;
const PASSWORDS = [APP_PASSWORD, ADMIN_PASSWORD, MD5_PASSWORD, TLS_PASSWORD];
const DB = `orders_${tag}`;
const SSL_OF_SESSION = 'select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()';

/** psql to the listener with no password anywhere (-w: never prompt, no password file). */
async function psql(port: number, sql: string): Promise<{ ok: boolean; out: string }> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PGPASSFILE: '/dev/null',
    PGCONNECT_TIMEOUT: '20',
  };
  delete env['PGPASSWORD'];
  const args = ['-h', '127.0.0.1', '-p', String(port), '-U', 'whoever', '-d', DB];
  args.push('-w', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql);
  try {
    const { stdout } = await run('psql', args, { env, timeout: 60_000 });
    return { ok: true, out: stdout.trim() };
  } catch (e) {
    return { ok: false, out: String((e as { stderr?: string }).stderr ?? e).trim() };
  }
}

/** The agent's "postgres session relayed" lines (JSON log lines). */
interface RelayedSession {
  server?: string;
  kernelRelay?: boolean;
  clientSends?: boolean;
}

function relayedSessions(output: string): RelayedSession[] {
  return output
    .split('\n')
    .filter((l) => l.includes('"postgres session relayed"'))
    .map((l) => JSON.parse(l) as RelayedSession);
}

/** psql until it logs in (the agent learns server workloads shortly after it starts). */
async function psqlEventually(port: number, sql: string): Promise<string> {
  let last = { ok: false, out: '' };
  await waitFor(async () => {
    last = await psql(port, sql);
    return last.ok;
  }, DEADLINE_MS).catch(() => assert.fail(`psql never logged in: ${last.out}`));
  return last.out;
}

/** The `pg` driver to the listener, no password; the rows of `sql` with `params`. */
async function pgQuery(port: number, sql: string, params: unknown[] = []): Promise<unknown[]> {
  const c = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'whoever',
    database: DB,
    connectionTimeoutMillis: 20_000,
  });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows;
  } finally {
    await c.end();
  }
}

describe('proxy: PostgreSQL through a local listener', CHAINED, () => {
  let pgServer: PostgresServer;
  let stack: ProxyStack;
  let dir: string;
  let staticPort: number;
  let dynamicPort: number;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-proxy-pg-certs-'));
    const right = makeTlsFiles(mkdtempSync(path.join(dir, 'right-')));
    const wrong = makeTlsFiles(mkdtempSync(path.join(dir, 'wrong-')));
    writeFileSync(path.join(dir, 'right-ca.pem'), right.caPem);
    writeFileSync(path.join(dir, 'wrong-ca.pem'), wrong.caPem);
    // One cluster for every case: TLS served, and the method chosen per user.
    pgServer = await startPasswordPostgres({
      tls: right,
      hba: [
        `hostssl all ${TLS_USER} 127.0.0.1/32 scram-sha-256`,
        `host all ${TLS_USER} 0.0.0.0/0 reject`,
        `host all ${MD5_USER} 127.0.0.1/32 md5`,
        'host all all 127.0.0.1/32 scram-sha-256',
      ],
    });
    const su = new pg.Client({
      connectionString: pgServer.url('postgres', pgServer.superPassword, 'postgres'),
    });
    await su.connect();
    await su.query(`create role ${APP_USER} login password '${APP_PASSWORD}'`);
    await su.query(`create role ${TLS_USER} login password '${TLS_PASSWORD}'`);
    await su.query(`create role ${ADMIN_USER} login createrole password '${ADMIN_PASSWORD}'`);
    // Stored as md5, so that the md5 line of pg_hba asks for md5 (not SCRAM).
    await su.query(`set password_encryption = 'md5'`);
    await su.query(`create role ${MD5_USER} login password '${MD5_PASSWORD}'`);
    const stored = await su.query('select rolpassword from pg_authid where rolname = $1', [
      MD5_USER,
    ]);
    assert.match(String(stored.rows[0]?.rolpassword), /^md5[0-9a-f]{32}$/);
    await su.query(`create database ${DB} owner ${ADMIN_USER}`);
    await su.end();
    const owner = new pg.Client({ connectionString: pgServer.url(ADMIN_USER, ADMIN_PASSWORD, DB) });
    await owner.connect();
    await owner.query('create table orders (id int); insert into orders values (1), (2), (3)');
    await owner.query(`grant select on orders to ${APP_USER}, ${MD5_USER}, ${TLS_USER}`);
    await owner.end();

    const db = (name: string) => ({
      name,
      host: '127.0.0.1',
      port: pgServer.port,
      protocol: 'postgres',
      present: 'postgres-password',
    });
    stack = await startProxyStack({
      name: 'pg',
      server: { config: { log_level: 'debug' } },
      clients: [ME],
      secrets: {
        'orders-db-login': login(APP_USER, APP_PASSWORD),
        'orders-db-admin': ADMIN_PASSWORD,
        'md5-login': login(MD5_USER, MD5_PASSWORD),
        'tls-login': login(TLS_USER, TLS_PASSWORD),
      },
      access: {
        server_workloads: [db('orders-db'), db('orders-db-dyn'), db('orders-db-md5')],
        credential_providers: [
          staticLogin('orders-static', 'orders-db-login'),
          staticLogin('orders-md5', 'md5-login'),
          staticLogin('orders-tls', 'tls-login'),
          // A dynamic role per lease, made with the admin login (docs/access.md's worked example).
          {
            name: 'orders-dyn',
            type: 'postgres-dynamic',
            config: {
              host: '127.0.0.1',
              port: pgServer.port,
              database: DB,
              admin_user: ADMIN_USER,
              admin_password: 'orders-db-admin',
              sslmode: 'disable',
              grants: [
                'grant connect on database {{database}} to {{role}}',
                'grant select on orders to {{role}}',
              ],
              ttl: '1h',
            },
          },
        ],
        access_policies: [
          grant(ME, 'orders-db', 'orders-static'),
          grant(ME, 'orders-db-dyn', 'orders-dyn'),
          grant(ME, 'orders-db-md5', 'orders-md5'),
        ],
      },
      // TLS upstream as docs/injection.md sets it up: the server workload with --tls --tls-ca.
      beforeAgent: async ({ ok }) => {
        for (const [name, ca] of [
          ['orders-db-tls', 'right-ca.pem'],
          ['orders-db-badca', 'wrong-ca.pem'],
        ] as const) {
          await ok(
            ...['server-workload', 'create', '--name', name, '--host', '127.0.0.1'],
            ...['--port', String(pgServer.port), '--protocol', 'postgres'],
            ...['--present', 'postgres-password', '--tls', '--tls-ca', path.join(dir, ca)],
          );
          await ok(
            ...['access-policy', 'create', '--name', `me-${name}`, '--client', ME],
            ...['--server', name, '--credential-provider', 'orders-tls'],
          );
        }
      },
      listeners: [
        'orders-db',
        'orders-db-dyn',
        'orders-db-md5',
        'orders-db-tls',
        'orders-db-badca',
      ],
      agent: { env: { TESSERA_LOG_LEVEL: 'debug' } },
    });
    staticPort = stack.port('orders-db');
    dynamicPort = stack.port('orders-db-dyn');
  });

  after(async () => {
    await stack?.stop();
    await pgServer?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('logs psql and the pg driver in as the static secret’s user, with no password', async () => {
    // The agent learns the server workloads from the server shortly after it starts.
    assert.equal(await psqlEventually(staticPort, 'select current_user'), APP_USER);
    assert.deepEqual(await psql(staticPort, 'select count(*) from orders'), { ok: true, out: '3' });

    // The driver's extended protocol (parse/bind/execute) is relayed as is.
    const rows = await pgQuery(staticPort, 'select current_user as u, $1::int + 1 as n', [41]);
    assert.deepEqual(rows, [{ u: APP_USER, n: 42 }]);

    // The agent runs as root here: the sessions were spliced in the kernel (docs/injection.md,
    // "Kernel relay") — the queries above went through it, psql's and the driver's own sockets
    // sending straight to the upstream.
    if (process.getuid?.() === 0) {
      assert.match(stack.agent.output(), /kernel relay on/);
      await waitFor(
        () =>
          relayedSessions(stack.agent.output()).some(
            (l) => l.server === 'orders-db' && l.kernelRelay === true && l.clientSends === true,
          ),
        DEADLINE_MS,
      );
    }
  });

  it('relays a TLS upstream session in user space (the kernel sees only ciphertext)', async () => {
    await psqlEventually(stack.port('orders-db-tls'), 'select 1');
    await waitFor(
      () =>
        relayedSessions(stack.agent.output()).some(
          (l) => l.server === 'orders-db-tls' && l.kernelRelay === false,
        ),
      DEADLINE_MS,
    );
  });

  it('logs in with md5 for a user pg_hba asks md5 of', async () => {
    const port = stack.port('orders-db-md5');
    assert.equal(await psqlEventually(port, SSL_OF_SESSION), `${MD5_USER}|f`);
    const [row] = (await pgQuery(port, 'select count(*)::int as n from orders')) as Array<{
      n: number;
    }>;
    assert.equal(row?.n, 3);
  });

  it('logs in over TLS verified against --tls-ca for a hostssl-only user', async () => {
    const port = stack.port('orders-db-tls');
    assert.equal(await psqlEventually(port, SSL_OF_SESSION), `${TLS_USER}|t`);
    const [row] = (await pgQuery(port, SSL_OF_SESSION)) as Array<{ ssl: boolean }>;
    assert.equal(row?.ssl, true);
  });

  it('refuses a server certificate its --tls-ca does not verify; the agent serves on', async () => {
    const bad = await psql(stack.port('orders-db-badca'), 'select 1');
    assert.equal(bad.ok, false);
    assert.match(
      bad.out,
      /FATAL: {2}TLS to server workload "orders-db-badca" \(127\.0\.0\.1:\d+\) failed: unable to verify the first certificate \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\), verified against the server workload's CA$/,
    );
    const err = await pgQuery(stack.port('orders-db-badca'), 'select 1').then(
      () => assert.fail('logged in through a server that does not verify'),
      (e: Error & { code?: string }) => e,
    );
    assert.equal(err.code, '08001', String(err));
    for (const p of PASSWORDS) assert.ok(!bad.out.includes(p));
    assert.deepEqual(await psql(stack.port('orders-db-tls'), SSL_OF_SESSION), {
      ok: true,
      out: `${TLS_USER}|t`,
    });
  });

  it('audits a released and a cached connection as one correlation chain each', async () => {
    const mine = (r: AuditRecord) => r.details.provider === 'orders-static';
    const released = await stack.auditChain((r) => mine(r) && r.details.cached !== true);
    // Later connections come from the agent's cache; it reports them in batches.
    const cachedChain = await stack.auditChain((r) => mine(r) && r.details.cached === true);
    for (const r of cachedChain) assert.equal(r.details.cached, true, JSON.stringify(r));
    assert.equal(cachedChain[2]?.details.way_in, 'listener');
    assert.equal(cachedChain[2]?.details.released_correlation_id, released[2]?.correlationId);

    const everything = await stack.ok('audit', 'list', '--output', 'json');
    for (const [where, text] of [
      ['agent log', stack.agent.output()],
      ['server log', stack.server.output()],
      ['audit log', everything],
    ] as const) {
      for (const p of PASSWORDS) assert.ok(!text.includes(p), `a password is in the ${where}`);
    }
  });

  it('logs in as a postgres-dynamic lease’s own role', async () => {
    const first = await psqlEventually(
      dynamicPort,
      'select current_user, (select count(*) from orders)',
    );
    assert.match(first, /^tessera_[0-9a-f]{20}\|3$/);
    // The same program again is the same client: the cached lease, the same role. (Another
    // program — the pg driver's node — has other attested attributes: a lease of its own.)
    const again = await psql(dynamicPort, 'select current_user');
    assert.equal(again.out, first.split('|')[0], 'the cached lease: the same role again');
    const [row] = (await pgQuery(dynamicPort, 'select current_user as u')) as Array<{ u: string }>;
    assert.match(row?.u ?? '', /^tessera_[0-9a-f]{20}$/);
  });

  it('answers SQLSTATE 28000 naming the reason once the policy is deleted', async () => {
    await stack.ok('access-policy', 'delete', 'me-orders-db');
    let last = { ok: true, out: '' };
    await waitFor(async () => {
      last = await psql(staticPort, 'select 1');
      return !last.ok;
    }, DEADLINE_MS);
    assert.match(last.out, /FATAL: {2}tessera: .*no-matching-policy/, last.out);
    const err = await pgQuery(staticPort, 'select 1').then(
      () => assert.fail('the pg driver logged in without a policy'),
      (e: Error & { code?: string; severity?: string }) => e,
    );
    assert.equal(err.code, '28000', String(err));
    assert.equal(err.severity, 'FATAL');
    assert.match(err.message, /no-matching-policy/);
    // The other server workload, still allowed, keeps serving.
    assert.equal((await psql(dynamicPort, 'select 1')).out, '1');
    await waitFor(() => /postgres connection refused/.test(stack.agent.output()), DEADLINE_MS);
    assert.ok(!stack.agent.output().includes(APP_PASSWORD));
  });
});
