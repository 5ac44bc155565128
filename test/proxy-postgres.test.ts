// Black-box: PostgreSQL through the agent's local listener (docs/injection.md "PostgreSQL"). A
// real server, a real agent (proxy.listeners in its config file), the real CLI, and a real
// PostgreSQL that checks passwords (scram-sha-256; a throwaway cluster: the shared one on 5432
// trusts local connections). Unmodified clients — psql and the `pg` driver — connect to
// 127.0.0.1:PORT with no password at all:
// - they are logged in as the static secret's user (its password only in Tessera's secret
//   store), and as a postgres-dynamic lease's own role through a second listener;
// - the audit log holds access.request → access.authorization → access.credential under one
//   correlation id for a connection, both for a release and for a use of the agent's cache
//   (cached: true);
// - no password is in the agent's log, the server's log or the audit log;
// - with the access policy deleted, the client gets a FATAL with SQLSTATE 28000 naming the reason.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
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
import { adminClients } from './helpers/admin.ts';
import { startAgent, type AgentProcess } from './helpers/agent-process.ts';
import { runCli } from './helpers/cli-process.ts';
import { freePort, waitFor } from './helpers/ports.ts';
import { CLI, startServer, type ServerProcess } from './helpers/server-process.ts';
import { CHAINED, DEADLINE_MS, entriesForMe, joinToken, serves } from './helpers/serving-agent.ts';

const run = promisify(execFile);
const ME = 'spiffe://example.org/proxy/orders-api';
const tag = randomBytes(4).toString('hex');
const APP_USER = `legacy_app_${tag}`;
const APP_PASSWORD = `pg-${randomBytes(18).toString('base64url')}`;
const ADMIN_USER = `tessera_admin_${tag}`;
const ADMIN_PASSWORD = `pga-${randomBytes(18).toString('base64url')}`;
const DB = `orders_${tag}`;

interface AuditRecord {
  action: string;
  correlationId: string;
  details: Record<string, unknown>;
}

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
  let server: ServerProcess;
  let agent: AgentProcess;
  let dir: string;
  let staticPort: number;
  let dynamicPort: number;
  const admin = (...args: string[]) =>
    runCli(args, { env: { TESSERA_ADMIN_SOCKET: server.adminSocket }, deadlineMs: 90_000 });
  async function ok(...args: string[]): Promise<string> {
    const r = await admin(...args);
    assert.equal(r.code, 0, `tessera ${args.join(' ')}\n${r.stderr}`);
    return r.stdout;
  }
  function putSecret(name: string, value: string): void {
    const put = spawnSync(process.execPath, [CLI, 'secret', 'put', name, '--from-stdin'], {
      input: value,
      env: { ...process.env, TESSERA_ADMIN_SOCKET: server.adminSocket },
      encoding: 'utf8',
    });
    assert.equal(put.status, 0, put.stderr);
  }
  async function audit(...filter: string[]): Promise<AuditRecord[]> {
    const out = await ok('audit', 'list', ...filter, '--output', 'json');
    return (JSON.parse(out) as { records: AuditRecord[] }).records;
  }

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-proxy-pg-'));
    pgServer = await startPasswordPostgres();
    const su = new pg.Client({
      connectionString: pgServer.url('postgres', pgServer.superPassword, 'postgres'),
    });
    await su.connect();
    await su.query(`create role ${APP_USER} login password '${APP_PASSWORD}'`);
    await su.query(`create role ${ADMIN_USER} login createrole password '${ADMIN_PASSWORD}'`);
    await su.query(`create database ${DB} owner ${ADMIN_USER}`);
    await su.end();
    const owner = new pg.Client({ connectionString: pgServer.url(ADMIN_USER, ADMIN_PASSWORD, DB) });
    await owner.connect();
    await owner.query('create table orders (id int); insert into orders values (1), (2), (3)');
    await owner.query(`grant select on orders to ${APP_USER}`);
    await owner.end();

    server = await startServer({ config: { log_level: 'debug' } });
    // The static login: JSON username/password in the secret store, nowhere else.
    putSecret('orders-db-login', JSON.stringify({ username: APP_USER, password: APP_PASSWORD }));
    await ok(
      ...['credential-provider', 'create', '--name', 'orders-static', '--type', 'static-secret'],
      ...['--set', 'secret=orders-db-login', '--set', 'format=username-password'],
    );
    // A dynamic role per lease, made with the admin login (docs/access.md's worked example).
    putSecret('orders-db-admin', ADMIN_PASSWORD);
    const dynConfig = path.join(dir, 'orders-dyn.yaml');
    writeFileSync(
      dynConfig,
      [
        'host: 127.0.0.1',
        `port: ${pgServer.port}`,
        `database: ${DB}`,
        `admin_user: ${ADMIN_USER}`,
        'admin_password: orders-db-admin',
        'sslmode: disable',
        'grants:',
        '  - grant connect on database {{database}} to {{role}}',
        '  - grant select on orders to {{role}}',
        'ttl: 1h',
        '',
      ].join('\n'),
    );
    await ok(
      ...['credential-provider', 'create', '--name', 'orders-dyn', '--type', 'postgres-dynamic'],
      ...['--config', dynConfig],
    );
    for (const [name, provider] of [
      ['orders-db', 'orders-static'],
      ['orders-db-dyn', 'orders-dyn'],
    ] as const) {
      await ok(
        ...['server-workload', 'create', '--name', name, '--host', '127.0.0.1'],
        ...['--port', String(pgServer.port), '--protocol', 'postgres'],
        ...['--present', 'postgres-password'],
      );
      await ok(
        ...['access-policy', 'create', '--name', `me-${name}`, '--client', ME],
        ...['--server', name, '--credential-provider', provider],
      );
    }
    staticPort = await freePort();
    dynamicPort = await freePort();
    const config = path.join(dir, 'agent.yaml');
    writeFileSync(
      config,
      [
        'proxy:',
        '  listeners:',
        '    - server_workload: orders-db',
        `      listen: "127.0.0.1:${staticPort}"`,
        '    - server_workload: orders-db-dyn',
        `      listen: "127.0.0.1:${dynamicPort}"`,
        '',
      ].join('\n'),
    );
    const admins = adminClients(server.adminSocket);
    const t = await joinToken(admins);
    await entriesForMe(admins, t.agentSpiffeId, [ME]);
    agent = await startAgent(server, {
      joinToken: t.token,
      args: ['--config', config],
      env: { TESSERA_LOG_LEVEL: 'debug' },
    });
    await waitFor(() => serves(agent.socketPath, ME), DEADLINE_MS).catch(() =>
      assert.fail(`the agent serves no SVID:\n${agent.output().slice(-4000)}`),
    );
  });

  after(async () => {
    await agent?.stop();
    await server?.stop();
    await pgServer?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('logs psql and the pg driver in as the static secret’s user, with no password', async () => {
    // The agent learns the server workloads from the server shortly after it starts.
    let last = { ok: false, out: '' };
    await waitFor(async () => {
      last = await psql(staticPort, 'select current_user');
      return last.ok;
    }, DEADLINE_MS).catch(() => assert.fail(`psql never logged in: ${last.out}`));
    assert.equal(last.out, APP_USER);
    assert.deepEqual(await psql(staticPort, 'select count(*) from orders'), { ok: true, out: '3' });

    // The driver's extended protocol (parse/bind/execute) is relayed as is.
    const rows = await pgQuery(staticPort, 'select current_user as u, $1::int + 1 as n', [41]);
    assert.deepEqual(rows, [{ u: APP_USER, n: 42 }]);
  });

  it('audits a released and a cached connection as one correlation chain each', async () => {
    const chainOf = async (r: AuditRecord): Promise<AuditRecord[]> =>
      audit('--correlation-id', r.correlationId);
    const credentials = (await audit('--action', 'access.credential')).filter(
      (r) => r.details.provider === 'orders-static',
    );
    const released = credentials.find((r) => r.details.cached !== true);
    assert.ok(released, JSON.stringify(credentials));
    const releasedChain = await chainOf(released);
    assert.deepEqual(
      releasedChain.map((r) => r.action),
      ['access.request', 'access.authorization', 'access.credential'],
    );

    // Later connections come from the agent's cache; it reports them in batches.
    let cachedChain: AuditRecord[] = [];
    await waitFor(async () => {
      const cached = (await audit('--action', 'access.credential')).find(
        (r) => r.details.provider === 'orders-static' && r.details.cached === true,
      );
      if (!cached) return false;
      cachedChain = await chainOf(cached);
      return cachedChain.length === 3;
    }, DEADLINE_MS).catch(async () =>
      assert.fail(
        `no cached use audited: ${JSON.stringify(await audit('--action', 'access.credential'))}\n` +
          agent.output().slice(-3000),
      ),
    );
    assert.deepEqual(
      cachedChain.map((r) => r.action),
      ['access.request', 'access.authorization', 'access.credential'],
    );
    for (const r of cachedChain) assert.equal(r.details.cached, true, JSON.stringify(r));
    assert.equal(cachedChain[2]?.details.way_in, 'listener');
    assert.equal(cachedChain[2]?.details.released_correlation_id, released.correlationId);

    const everything = await ok('audit', 'list', '--output', 'json');
    for (const [where, text] of [
      ['agent log', agent.output()],
      ['server log', server.output()],
      ['audit log', everything],
    ] as const) {
      assert.ok(!text.includes(APP_PASSWORD), `the password is in the ${where}`);
      assert.ok(!text.includes(ADMIN_PASSWORD), `the admin password is in the ${where}`);
    }
  });

  it('logs in as a postgres-dynamic lease’s own role', async () => {
    let last = { ok: false, out: '' };
    await waitFor(async () => {
      last = await psql(dynamicPort, 'select current_user, (select count(*) from orders)');
      return last.ok;
    }, DEADLINE_MS).catch(() => assert.fail(`psql never logged in: ${last.out}`));
    assert.match(last.out, /^tessera_[0-9a-f]{20}\|3$/);
    // The same program again is the same client: the cached lease, the same role. (Another
    // program — the pg driver's node — has other attested attributes: a lease of its own.)
    const again = await psql(dynamicPort, 'select current_user');
    assert.equal(again.out, last.out.split('|')[0], 'the cached lease: the same role again');
    const [row] = (await pgQuery(dynamicPort, 'select current_user as u')) as Array<{ u: string }>;
    assert.match(row?.u ?? '', /^tessera_[0-9a-f]{20}$/);
  });

  it('answers SQLSTATE 28000 naming the reason once the policy is deleted', async () => {
    await ok('access-policy', 'delete', 'me-orders-db');
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
    await waitFor(() => /postgres connection refused/.test(agent.output()), DEADLINE_MS);
    assert.ok(!agent.output().includes(APP_PASSWORD));
  });
});
