// postgres-dynamic against real PostgreSQL: the shared server on 127.0.0.1:5432 (trusts local
// logins, so it shows grants, role creation and dropping) and a throwaway scram-sha-256 cluster
// (shows the password is checked and VALID UNTIL ends logins). Leases go through the real
// LeaseManager over a SQLite store, with the real Auditor.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { Credential } from '../../../core/access.ts';
import { Auditor } from '../../../server/audit/auditor.ts';
import { LeaseManager } from '../../../server/broker/lease-manager.ts';
import { openStore } from '../../../store/open.ts';
import type { Store } from '../../../store/types.ts';
import { type CredentialProvider, createCredentialProvider } from '../catalog.ts';
import { MemorySecrets, deps, record, request } from '../testing/fakes.ts';
import {
  type PostgresServer,
  psql,
  sharedPostgres,
  startPasswordPostgres,
} from '../testing/password-postgres.ts';

const quiet = { warn: () => {}, info: () => {} };

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function suite(label: string, startServer: () => Promise<PostgresServer>) {
  describe(`postgres-dynamic on ${label}`, () => {
    const tag = randomBytes(4).toString('hex');
    const db = `tessera_pgdyn_${tag}`;
    const admin = `tessera_admin_${tag}`;
    const adminPassword = randomBytes(18).toString('base64url');
    const prefix = `tt${tag}_`;
    const secrets = new MemorySecrets().set('pg-admin', adminPassword);
    let server: PostgresServer;
    let superClient: pg.Client;
    let dir = '';
    let store: Store;
    let offset = 0;
    const clock = { now: () => Date.now() + offset };
    const providers = new Map<string, CredentialProvider>();
    let manager: LeaseManager;

    const config = (over: Record<string, unknown> = {}) => ({
      host: '127.0.0.1',
      port: server.port,
      database: db,
      admin_user: admin,
      admin_password: 'pg-admin',
      sslmode: 'disable',
      role_prefix: prefix,
      grants: [
        'grant connect on database {{database}} to {{role}}',
        'grant select on orders to {{role}}',
      ],
      ttl: '1h',
      ...over,
    });

    function newManager(o: Partial<ConstructorParameters<typeof LeaseManager>[0]> = {}) {
      return new LeaseManager({
        leases: store.leases,
        clock,
        audit: new Auditor(clock, store),
        log: quiet,
        providerFor: (n) => providers.get(n),
        ...o,
      });
    }

    function addProvider(name: string, over: Record<string, unknown> = {}, m = manager) {
      const p = createCredentialProvider(
        record('postgres-dynamic', config(over), name),
        deps({ secrets, leases: m, now: clock.now }),
      );
      providers.set(name, p);
      return p;
    }

    const login = async (c: Credential, sql = 'select count(*) from orders') => {
      assert.equal(c.value.kind, 'password');
      const v = c.value.kind === 'password' ? c.value : { username: '', password: '' };
      return psql(server, v.username, v.password, db, sql);
    };
    const pgLogin = async (c: Credential) => {
      const v = c.value.kind === 'password' ? c.value : { username: '', password: '' };
      const client = new pg.Client({ connectionString: server.url(v.username, v.password, db) });
      await client.connect();
      return client;
    };
    const roleExists = async (role: string) =>
      (await superClient.query('select 1 from pg_roles where rolname = $1', [role])).rowCount === 1;
    const usernameOf = (c: Credential) => (c.value.kind === 'password' ? c.value.username : '');

    before(async () => {
      server = await startServer();
      superClient = new pg.Client({
        connectionString: server.url('postgres', server.superPassword, 'postgres'),
      });
      await superClient.connect();
      await superClient.query(`create role ${admin} login createrole password '${adminPassword}'`);
      await superClient.query(`create database ${db} owner ${admin}`);
      const a = new pg.Client({ connectionString: server.url(admin, adminPassword, db) });
      await a.connect();
      await a.query('revoke connect on database ' + db + ' from public');
      await a.query('create table orders (id int); insert into orders values (1), (2), (3)');
      await a.query('create table payroll (id int); insert into payroll values (1)');
      await a.end();
      dir = await mkdtemp(path.join(tmpdir(), 'tessera-pgdyn-'));
      store = await openStore({ kind: 'sqlite', path: path.join(dir, 'leases.db') });
      manager = newManager();
    });

    after(async () => {
      for (const p of providers.values()) await p.close?.();
      await store?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
      if (superClient) {
        await superClient.query(`drop database if exists ${db} with (force)`);
        const roles = await superClient.query(
          'select rolname from pg_roles where rolname like $1',
          [`${prefix}%`],
        );
        for (const r of roles.rows as { rolname: string }[]) {
          await superClient.query(`drop role if exists "${r.rolname}"`);
        }
        await superClient.query(`drop role if exists ${admin}`);
        await superClient.end();
      }
      await server?.stop();
    });

    it('a released role logs in with psql and pg and can do exactly what its grants allow', async () => {
      const p = addProvider('orders-db');
      const before = clock.now();
      const c = await p.release(request());
      assert.match(usernameOf(c), new RegExp(`^${prefix}[0-9a-f]{20}$`));
      assert.ok(
        c.expiresAt !== null &&
          c.expiresAt >= before + 3_600_000 &&
          c.expiresAt <= clock.now() + 3_600_000,
      );
      const lease = await store.leases.get(c.leaseId);
      assert.equal(lease?.state, 'active');
      assert.deepEqual(lease?.data, { role: usernameOf(c), database: db });
      assert.equal(lease?.policy, 'web-to-orders');
      assert.deepEqual(await login(c), { ok: true, out: '3' });
      const denied = await login(c, 'select count(*) from payroll');
      assert.equal(denied.ok, false);
      assert.match(denied.out, /permission denied for table payroll/);
      const client = await pgLogin(c);
      assert.deepEqual((await client.query('select count(*)::int as n from orders')).rows, [
        { n: 3 },
      ]);
      await assert.rejects(client.query('insert into orders values (4)'), { code: '42501' });
      await client.end();
      const { rows } = await superClient.query(
        'select rolvaliduntil from pg_roles where rolname = $1',
        [usernameOf(c)],
      );
      assert.equal((rows[0] as { rolvaliduntil: Date }).rolvaliduntil.getTime(), c.expiresAt);
    });

    it('endWhere drops the role: open sessions end, no new login, audited without secrets', async () => {
      const p = addProvider('orders-db-2');
      const c = await p.release(request({ policy: 'to-revoke' }));
      const other = await p.release(request({ policy: 'kept' }));
      const session = await pgLogin(c);
      session.on('error', () => {});
      assert.equal(await manager.endWhere({ policy: 'to-revoke' }, 'policy deleted'), 1);
      assert.equal(await roleExists(usernameOf(c)), false);
      assert.equal(await roleExists(usernameOf(other)), true, 'other leases untouched');
      await assert.rejects(session.query('select 1'));
      await session.end().catch(() => {});
      const again = await login(c);
      assert.equal(again.ok, false);
      assert.match(again.out, /role "[^"]+" does not exist|password authentication failed/);
      await assert.rejects(pgLogin(c));
      const lease = await store.leases.get(c.leaseId);
      assert.equal(lease?.state, 'ended');
      assert.equal(lease?.endReason, 'policy deleted');
      const audit = await store.audit.list({ action: 'lease.end' }, 100);
      const rec = audit.find((r) => r.target === c.leaseId);
      assert.deepEqual(rec?.details, {
        lease_id: c.leaseId,
        provider: 'orders-db-2',
        server: 'orders-api',
        client: 'spiffe://example.org/ns/prod/sa/web',
        policy: 'to-revoke',
        reason: 'policy deleted',
      });
      const password = c.value.kind === 'password' ? c.value.password : '';
      assert.ok(!JSON.stringify(audit).includes(password));
      assert.equal(await manager.endWhere({ policy: 'to-revoke' }, 'again'), 0, 'idempotent');
      if (lease) await p.endLease?.(lease); // ending again is harmless
    });

    {
      it('the password is checked and VALID UNTIL ends logins (password clusters only)', async (t) => {
        if (!server.passwordAuth) {
          t.skip('this server trusts local logins');
          return;
        }
        const p = addProvider('short', { ttl: '2s' });
        const c = await p.release(request());
        assert.deepEqual(await login(c), { ok: true, out: '3' });
        const wrong = await psql(server, usernameOf(c), 'not-the-password', db, 'select 1');
        assert.equal(wrong.ok, false);
        assert.match(wrong.out, /password authentication failed/);
        await waitFor('VALID UNTIL to pass', async () => !(await login(c)).ok);
        assert.match((await login(c)).out, /password authentication failed/);
        assert.equal(await roleExists(usernameOf(c)), true, 'expired but not yet swept');
        assert.equal(await manager.sweep(), 1);
        assert.equal(await roleExists(usernameOf(c)), false);
        assert.equal((await store.leases.get(c.leaseId))?.endReason, 'expired');
      });
    }

    it('a new manager ends, at start, leases a crashed one left expired or mid-creation', async () => {
      const p = addProvider('crashy');
      const live = await p.release(request());
      // Mid-creation: the lease recorded and the role created, then the process died.
      const role = `${prefix}${randomBytes(10).toString('hex')}`;
      await manager.record({
        id: 'crashed-mid-creation',
        provider: 'crashy',
        server: 'orders-api',
        client: 'spiffe://example.org/w',
        policy: 'p',
        agent: '',
        data: { role, database: db },
        expiresAt: clock.now() + 5 * 3_600_000,
        createdAt: clock.now(),
      });
      // As createRole does it: the admin is a member of the role (so it may drop what it owns).
      await superClient.query(`create role "${role}" login role ${admin}`);
      await p.close?.();
      providers.delete('crashy');
      // Restart two hours later: the live lease has expired, the creating one is long abandoned.
      offset = 2 * 3_600_000;
      const warnings: string[] = [];
      const restarted = newManager({
        log: { warn: (f, m) => warnings.push(`${m} ${JSON.stringify(f)}`), info: () => {} },
      });
      addProvider('crashy', {}, restarted);
      const ac = new AbortController();
      const running = restarted.run(ac.signal);
      try {
        await waitFor(
          'the start sweep',
          async () =>
            (await store.leases.get(live.leaseId))?.state === 'ended' &&
            (await store.leases.get('crashed-mid-creation'))?.state === 'ended',
          30_000,
        ).catch((e: Error) => {
          throw new Error(`${e.message}; warnings: ${warnings.join('; ')}`);
        });
      } finally {
        ac.abort();
        await running;
        offset = 0;
      }
      assert.equal(await roleExists(usernameOf(live)), false);
      assert.equal(await roleExists(role), false);
      assert.equal(
        (await store.leases.get('crashed-mid-creation'))?.endReason,
        'abandoned during creation',
      );
    });

    it('never drops a role its lease records do not name in its own shape', async () => {
      const p = addProvider('careful');
      const lease = {
        id: 'l',
        provider: 'careful',
        server: 's',
        client: 'c',
        policy: 'p',
        agent: '',
        data: { role: admin },
        expiresAt: 2,
        createdAt: 1,
      };
      await assert.rejects(p.endLease?.(lease) ?? Promise.resolve(), {
        name: 'FailedPreconditionError',
        message:
          'credential provider "careful": lease l does not name a role this provider created',
      });
      await assert.rejects(
        p.endLease?.({
          ...lease,
          provider: 'other',
          data: { role: `${prefix}${'0'.repeat(20)}` },
        }) ?? Promise.resolve(),
        {
          name: 'FailedPreconditionError',
        },
      );
      assert.equal(await roleExists(admin), true);
    });

    it('a lease revoked while its role was created undoes the role and fails the release', async () => {
      const revoking = {
        record: (l: Parameters<LeaseManager['record']>[0]) => manager.record(l),
        activate: async () => false,
      };
      const p = createCredentialProvider(
        record('postgres-dynamic', config(), 'raced'),
        deps({ secrets, leases: revoking, now: clock.now }),
      );
      providers.set('raced', p);
      await assert.rejects(p.release(request()), {
        name: 'FailedPreconditionError',
        message:
          /^credential provider "raced": lease [0-9a-f-]{36} was revoked while it was created$/,
      });
      const { rows } = await superClient.query(
        'select count(*)::int as n from pg_roles where rolname like $1',
        [`${prefix}%`],
      );
      const leases = await store.leases.listMatching({ provider: 'raced' }, 10);
      assert.equal(leases.length, 1);
      assert.equal(await roleExists(String(leases[0]?.data.role)), false);
      assert.ok((rows[0] as { n: number }).n >= 0);
    });

    it('a failing grant rolls the role back and names the statement', async () => {
      const p = addProvider('bad-grants', {
        grants: ['grant select on no_such_table to {{role}}'],
      });
      await assert.rejects(p.release(request()), {
        name: 'FailedPreconditionError',
        message:
          'credential provider "bad-grants": grants[0]: relation "no_such_table" does not exist (SQLSTATE 42P01)',
      });
      const [l] = await store.leases.listMatching({ provider: 'bad-grants' }, 10);
      assert.equal(l?.state, 'creating', 'left for the sweeper');
      assert.equal(await roleExists(String(l?.data.role)), false);
    });

    it('a wrong admin password or a missing admin secret is reported without the password', async (t) => {
      const missing = createCredentialProvider(
        record('postgres-dynamic', config({ admin_password: 'nope' }), 'no-secret'),
        deps({ secrets, leases: manager, now: clock.now }),
      );
      providers.set('no-secret', missing);
      await assert.rejects(missing.release(request()), {
        name: 'FailedPreconditionError',
        message: 'credential provider "no-secret": secret "nope" does not exist',
      });
      if (!server.passwordAuth) {
        t.diagnostic('wrong password not checkable: this server trusts local logins');
        return;
      }
      const bad = new MemorySecrets().set('pg-admin', 'wrong-admin-password');
      const wrong = createCredentialProvider(
        record('postgres-dynamic', config(), 'wrong-admin'),
        deps({ secrets: bad, leases: manager, now: clock.now }),
      );
      providers.set('wrong-admin', wrong);
      await assert.rejects(wrong.release(request()), (e: Error) => {
        assert.equal(e.name, 'FailedPreconditionError');
        assert.match(
          e.message,
          /^credential provider "wrong-admin": connect to 127\.0\.0\.1:\d+: password authentication failed for user/,
        );
        assert.ok(!e.message.includes('wrong-admin-password'));
        return true;
      });
    });
  });
}

suite('the shared server at 127.0.0.1:5432', async () => sharedPostgres);
suite('a scram-sha-256 cluster', startPasswordPostgres);
