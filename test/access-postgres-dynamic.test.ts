// The worked example of docs/access.md, black-box: a workload replaces its static database
// password with a PostgreSQL role of its own. A real server, agent and CLI; a real PostgreSQL
// that checks passwords (a throwaway cluster: the shared one on 5432 trusts every local
// connection, so it could not show that a dropped role can no longer log in). The workload (its
// own uid) asks with `tessera credential get`, logs in with psql as the released role, may read
// what the grants allow and nothing else; deleting the access policy ends the lease — the role is
// dropped and the same credential no longer logs in.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import {
  psql,
  startPasswordPostgres,
  type PostgresServer,
} from '../src/plugins/credential-providers/testing/password-postgres.ts';
import { adminClients, entry } from './helpers/admin.ts';
import { startAgent, type AgentProcess } from './helpers/agent-process.ts';
import { runCli } from './helpers/cli-process.ts';
import { waitFor } from './helpers/ports.ts';
import { CLI, startServer, type ServerProcess } from './helpers/server-process.ts';

const UID = 1510;
const CLIENT = 'spiffe://example.org/ns/prod/sa/orders-api';
const root = process.getuid?.() === 0;

interface Released {
  username: string;
  password: string;
  leaseId: string;
  expiresAt: string | null;
}

describe(
  'postgres-dynamic through server, agent and CLI',
  { skip: !root && 'needs root to run the workload as another uid' },
  () => {
    const tag = randomBytes(4).toString('hex');
    const db = `orders_${tag}`;
    const adminRole = `tessera_admin_${tag}`;
    const adminPassword = randomBytes(18).toString('base64url');
    let pgServer: PostgresServer;
    let server: ServerProcess;
    let agent: AgentProcess;
    let dir: string;
    const admin = (...args: string[]) =>
      runCli(args, { env: { TESSERA_ADMIN_SOCKET: server.adminSocket } });

    before(async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-pgdyn-e2e-'));
      pgServer = await startPasswordPostgres();
      const su = new pg.Client({
        connectionString: pgServer.url('postgres', pgServer.superPassword, 'postgres'),
      });
      await su.connect();
      await su.query(`create role ${adminRole} login createrole password '${adminPassword}'`);
      await su.query(`create database ${db} owner ${adminRole}`);
      await su.end();
      const owner = new pg.Client({ connectionString: pgServer.url(adminRole, adminPassword, db) });
      await owner.connect();
      await owner.query(`revoke connect on database ${db} from public`);
      await owner.query('create table orders (id int); insert into orders values (1), (2), (3)');
      await owner.query('create table payroll (id int); insert into payroll values (1)');
      await owner.end();

      server = await startServer({ config: { log_level: 'info' } });
      const token = await adminClients(server.adminSocket).agents.createJoinToken({});
      agent = await startAgent(server, { joinToken: token.token });
      await adminClients(server.adminSocket).entries.batchCreateEntry({
        entries: [entry(CLIENT, token.agentSpiffeId, [`unix:uid:${UID}`])],
      });

      // As docs/access.md's worked example: the admin password goes in on stdin.
      const put = spawnSync(
        process.execPath,
        [CLI, 'secret', 'put', 'orders-db-admin', '--from-stdin'],
        {
          input: adminPassword,
          env: { ...process.env, TESSERA_ADMIN_SOCKET: server.adminSocket },
          encoding: 'utf8',
        },
      );
      assert.equal(put.status, 0, put.stderr);
      const config = path.join(dir, 'orders-db.yaml');
      writeFileSync(
        config,
        [
          'host: 127.0.0.1',
          `port: ${pgServer.port}`,
          `database: ${db}`,
          `admin_user: ${adminRole}`,
          'admin_password: orders-db-admin',
          'sslmode: disable',
          'grants:',
          '  - grant connect on database {{database}} to {{role}}',
          '  - grant select on orders to {{role}}',
          'ttl: 1h',
          '',
        ].join('\n'),
      );
      for (const args of [
        ['credential-provider', 'create', '--name', 'orders-db', '--type', 'postgres-dynamic'],
        ['server-workload', 'create', '--name', 'orders-db', '--host', '127.0.0.1'],
        ['access-policy', 'create', '--name', 'orders-api-to-db', '--client', CLIENT],
      ]) {
        if (args[0] === 'credential-provider') args.push('--config', config);
        if (args[0] === 'server-workload') {
          args.push('--port', String(pgServer.port), '--protocol', 'postgres');
          args.push('--present', 'postgres-password');
        }
        if (args[0] === 'access-policy') {
          args.push('--server', 'orders-db', '--credential-provider', 'orders-db');
        }
        const r = await admin(...args);
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      }
    });

    after(async () => {
      await agent?.stop();
      await server?.stop();
      await pgServer?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    /** `tessera credential get` as the workload's uid, until `done` (entries reach the agent). */
    async function credentialGet(done: (code: number | null, err: string) => boolean) {
      let last = { code: null as number | null, stdout: '', stderr: '' };
      await waitFor(() => {
        const r = spawnSync(
          process.execPath,
          [
            CLI,
            'credential',
            'get',
            '--server',
            'orders-db',
            '--output',
            'json',
            '--workload-socket',
            agent.socketPath,
          ],
          {
            uid: UID,
            gid: UID,
            env: { PATH: process.env['PATH'] ?? '', HOME: '/tmp', TESSERA_LOG_LEVEL: 'silent' },
            encoding: 'utf8',
            timeout: 60_000,
          },
        );
        last = { code: r.status, stdout: r.stdout, stderr: r.stderr };
        return done(r.status, r.stderr);
      }, 30_000).catch(() => assert.fail(`no final answer: ${JSON.stringify(last)}`));
      return last;
    }

    it('releases a role of its own that logs in, reads what the grants allow and nothing else; the policy delete drops it', async () => {
      const r = await credentialGet((code) => code === 0);
      const c = JSON.parse(r.stdout) as Released;
      assert.match(c.username, /^tessera_[0-9a-f]{20}$/);
      assert.ok(c.leaseId !== '' && c.expiresAt !== null, r.stdout);

      const read = await psql(pgServer, c.username, c.password, db, 'select count(*) from orders');
      assert.deepEqual(read, { ok: true, out: '3' });
      const payroll = await psql(pgServer, c.username, c.password, db, 'select * from payroll');
      assert.equal(payroll.ok, false);
      assert.match(payroll.out, /permission denied for table payroll/);
      const wrong = await psql(pgServer, c.username, 'not-the-password', db, 'select 1');
      assert.equal(wrong.ok, false);
      assert.match(wrong.out, /password authentication failed/);

      const del = await admin('access-policy', 'delete', 'orders-api-to-db');
      assert.equal(del.code, 0, del.stderr);
      const after = await psql(pgServer, c.username, c.password, db, 'select 1');
      assert.equal(after.ok, false, 'the released role still logs in after the policy delete');
      assert.match(after.out, /password authentication failed|role .* does not exist/);

      const denied = await credentialGet((code) => code !== 0);
      assert.equal(denied.code, 5, denied.stderr);
      assert.match(denied.stderr, /no-matching-policy/);
      assert.ok(!denied.stderr.includes(c.password));

      const audit = await admin('audit', 'list', '--output', 'json');
      assert.ok(audit.stdout.includes(c.leaseId), 'the lease is in the audit log');
      assert.ok(!audit.stdout.includes(c.password), 'the password is not');
      assert.ok(!audit.stdout.includes(adminPassword), 'nor the admin password');
    });
  },
);
