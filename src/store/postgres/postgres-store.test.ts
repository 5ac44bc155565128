// Runs the conformance suite against the real PostgreSQL on 127.0.0.1:5432, in a throwaway
// database (one schema per store), and checks unavailability without stopping the server:
// a local TCP proxy stands in for the network and is cut instead.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { UnavailableError } from '../../core/errors.ts';
import { storeConformance } from '../conformance.ts';
import { openStore } from '../open.ts';
import { toStoreError } from '../sql/errors.ts';
import { postgresDialect } from './postgres-store.ts';
import { T0, auditEvent, makeEntry } from '../conformance/fixtures.ts';
import { verifyChain } from '../../core/audit.ts';
import { withJwtAuthority } from '../../core/bundle.ts';

const SERVER = 'postgres://postgres@127.0.0.1:5432';
const dbName = `tessera_test_${randomBytes(6).toString('hex')}`;
let admin: pg.Client | undefined;
let n = 0;

const schemaUrl = (schema: string, host = '127.0.0.1:5432') =>
  `postgres://postgres@${host}/${dbName}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;

async function freshSchema(): Promise<string> {
  const schema = `s${n++}`;
  const c = new pg.Client({ connectionString: `${SERVER}/${dbName}` });
  await c.connect();
  try {
    await c.query(`create schema ${schema}`);
  } finally {
    await c.end();
  }
  return schema;
}

before(async () => {
  admin = new pg.Client({ connectionString: `${SERVER}/postgres` });
  await admin.connect();
  await admin.query(`create database ${dbName}`);
});

after(async () => {
  await admin?.query(`drop database if exists ${dbName} with (force)`);
  await admin?.end();
});

storeConformance('postgres', async () =>
  openStore({ kind: 'postgres', url: schemaUrl(await freshSchema()), poolSize: 25 }),
);

/** A TCP relay to PostgreSQL that the test can cut, as a network failure would. */
async function startProxy(): Promise<{ port: number; cut(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(5432, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    cut: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

/** ping() and queries fail with UnavailableError, quickly, once the network is cut. */
async function cutNetwork(): Promise<void> {
  const proxy = await startProxy();
  const schema = await freshSchema();
  const store = await openStore({
    kind: 'postgres',
    url: schemaUrl(schema, `127.0.0.1:${proxy.port}`),
    poolSize: 2,
  });
  try {
    await store.ping();
    await store.entries.create(makeEntry(1));
    await proxy.cut();
    const started = Date.now();
    await assert.rejects(store.ping(), UnavailableError);
    await assert.rejects(store.entries.get(makeEntry(1).id), UnavailableError);
    await assert.rejects(
      store.transaction((tx) => tx.entries.count()),
      UnavailableError,
    );
    assert.ok(Date.now() - started < 5000);
  } finally {
    await store.close();
  }
}

/** Two stores with their own pools stand for two servers sharing one database. */
async function twoServers(): Promise<void> {
  const url = schemaUrl(await freshSchema());
  const servers = await Promise.all([
    openStore({ kind: 'postgres', url, poolSize: 8 }),
    openStore({ kind: 'postgres', url, poolSize: 8 }),
  ]);
  try {
    const each = <T>(fn: (i: number) => Promise<T>) =>
      Promise.all(Array.from({ length: 40 }, (_, i) => fn(i)));
    await each((i) => servers[i % 2]!.audit.append(auditEvent(i)));
    assert.equal(verifyChain(await servers[0].audit.list({}, 1000)).ok, true);
    const hash = 'f'.repeat(64);
    await servers[0].joinTokens.create({
      tokenHash: hash,
      spiffeId: '',
      expiresAt: T0 + 1,
      createdAt: T0,
    });
    const won = await each((i) => servers[i % 2]!.joinTokens.consume(hash, T0));
    assert.equal(won.filter((r) => r !== null).length, 1);
    await each((i) =>
      servers[i % 2]!.bundles.mutate('example.org', (b) =>
        withJwtAuthority(b, { kid: `k${i}`, publicKeyDer: new Uint8Array([i]), expiresAt: 0 }),
      ),
    );
    const bundle = await servers[1].bundles.get('example.org');
    assert.deepEqual([bundle?.jwtAuthorities.length, bundle?.sequence], [40, 40]);
  } finally {
    await Promise.all(servers.map((s) => s.close()));
  }
}

describe('postgres store: availability and sharing', () => {
  it('openStore on a closed port fails fast with UnavailableError', async () => {
    const started = Date.now();
    await assert.rejects(
      openStore({ kind: 'postgres', url: 'postgres://postgres@127.0.0.1:1/postgres' }),
      (e) => e instanceof UnavailableError && /^datastore unavailable: /.test(e.message),
    );
    assert.ok(Date.now() - started < 3000);
  });

  it('a server that accepts but never answers times out as UnavailableError', async () => {
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    try {
      await assert.rejects(
        openStore({
          kind: 'postgres',
          url: `postgres://postgres@127.0.0.1:${port}/postgres`,
          connectTimeoutMs: 300,
        }),
        UnavailableError,
      );
    } finally {
      silent.close();
    }
  });

  it('ping() and queries fail with UnavailableError once the network is cut', cutNetwork);

  it('two stores migrating the same database at once both succeed', async () => {
    const url = schemaUrl(await freshSchema());
    const stores = await Promise.all([
      openStore({ kind: 'postgres', url }),
      openStore({ kind: 'postgres', url }),
    ]);
    await stores[0].entries.create(makeEntry(1));
    assert.equal(await stores[1].entries.count(), 1);
    await Promise.all(stores.map((s) => s.close()));
  });

  it(
    'two servers sharing one database keep the audit chain, single use and bundle updates',
    twoServers,
  );
});

describe('postgres store: conflicts are retryable', () => {
  /** Runs sql on a fresh client of the test database and returns the error it raised. */
  async function errorOf(run: (c: pg.Client) => Promise<unknown>): Promise<unknown> {
    const c = new pg.Client({ connectionString: `${SERVER}/${dbName}` });
    await c.connect();
    try {
      await run(c);
    } catch (e) {
      return e;
    } finally {
      await c.end();
    }
    assert.fail('expected the statement to fail');
  }

  it('a statement timeout maps to UnavailableError', async () => {
    const e = await errorOf(async (c) => {
      await c.query('set statement_timeout = 50');
      await c.query('select pg_sleep(2)');
    });
    const mapped = toStoreError(e, postgresDialect);
    assert.ok(mapped instanceof UnavailableError, mapped.message);
    assert.match(mapped.message, /statement timed out, retry/);
  });

  it('a deadlock between two transactions maps to UnavailableError for the victim', async () => {
    const schema = await freshSchema();
    const setup = new pg.Client({ connectionString: `${SERVER}/${dbName}` });
    await setup.connect();
    await setup.query(`create table ${schema}.t (id int primary key, v int)`);
    await setup.query(`insert into ${schema}.t values (1, 0), (2, 0)`);
    await setup.end();
    const a = new pg.Client({ connectionString: `${SERVER}/${dbName}` });
    const b = new pg.Client({ connectionString: `${SERVER}/${dbName}` });
    await Promise.all([a.connect(), b.connect()]);
    try {
      for (const c of [a, b]) await c.query(`set deadlock_timeout = 50; begin`);
      await a.query(`update ${schema}.t set v = 1 where id = 1`);
      await b.query(`update ${schema}.t set v = 1 where id = 2`);
      // Each now waits for the row the other holds: PostgreSQL aborts exactly one of them.
      const results = await Promise.allSettled([
        a.query(`update ${schema}.t set v = 2 where id = 2`),
        b.query(`update ${schema}.t set v = 2 where id = 1`),
      ]);
      const failed = results.filter((r) => r.status === 'rejected');
      assert.equal(failed.length, 1);
      const mapped = toStoreError(failed[0]?.reason, postgresDialect);
      assert.ok(mapped instanceof UnavailableError, mapped.message);
      assert.match(mapped.message, /deadlock detected, retry/);
    } finally {
      await Promise.allSettled([a.query('rollback'), b.query('rollback')]);
      await Promise.all([a.end(), b.end()]);
    }
  });
});
