// The PostgreSQL handler between unmodified clients (psql, the pg driver) and real PostgreSQL
// servers: a throwaway cluster requiring passwords (SCRAM-stored and md5-stored roles) and the
// shared trust server. proxy-core's listener is stood in (testing/stand-in-connection.ts).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, suite, test } from 'node:test';
import pg from 'pg';
import { UnavailableError } from '../../../core/errors.ts';
import {
  type PostgresServer,
  psql,
  sharedPostgres,
  startPasswordPostgres,
} from '../../../plugins/credential-providers/testing/password-postgres.ts';
import { CredentialDeniedError } from '../../credentials/credential-service.ts';
import { createPostgresHandler } from './postgres-handler.ts';
import {
  MemoryLog,
  type StandIn,
  released,
  serverWorkload,
  standInListener,
} from './testing/stand-in-connection.ts';
import { errorAt, exchange, packet } from './testing/wire-client.ts';
import { PROTOCOL_3_0, cancelRequest, message, startupMessage } from './wire.ts';

const SCRAM_PW = randomBytes(12).toString('base64url');
const MD5_PW = randomBytes(12).toString('base64url');
const log = new MemoryLog();
const handler = createPostgresHandler();
let pgServer: PostgresServer;
let standIn: StandIn;
let proxy: { port: number; close(): Promise<void> };
const viaProxy = () => ({ ...sharedPostgres, port: proxy.port });

before(async () => {
  pgServer = await startPasswordPostgres({ auth: 'md5' });
  const setup = await psql(
    pgServer,
    'postgres',
    pgServer.superPassword,
    'postgres',
    `create role scram_app login password '${SCRAM_PW}';
     set password_encryption = 'md5';
     create role md5_app login password '${MD5_PW}';`,
  );
  assert.ok(setup.ok, setup.out);
  standIn = {
    server: serverWorkload({ port: pgServer.port }),
    credential: async () => released('scram_app', SCRAM_PW),
    asked: 0,
  };
  proxy = await standInListener(handler, standIn, log);
});

after(async () => {
  await proxy?.close();
  await pgServer?.stop();
  // Whatever happened, no password reached a log line.
  for (const line of log.lines) {
    assert.ok(!line.includes(SCRAM_PW) && !line.includes(MD5_PW), line);
  }
});

const as = (user: string, password: string) => () => {
  standIn.credential = async () => released(user, password);
};

suite('psql and pg through the proxy log in as the brokered user', () => {
  test('SCRAM-SHA-256: psql without a password', async () => {
    as('scram_app', SCRAM_PW)();
    const r = await psql(viaProxy(), 'whoever', '', 'postgres', 'select current_user');
    assert.deepEqual(r, { ok: true, out: 'scram_app' });
  });

  test('md5: psql with a wrong password of its own', async () => {
    as('md5_app', MD5_PW)();
    const r = await psql(
      viaProxy(),
      'md5_app',
      'not-the-password',
      'postgres',
      'select current_user',
    );
    assert.deepEqual(r, { ok: true, out: 'md5_app' });
  });

  test('the pg driver with a wrong password, a query and the session parameters', async () => {
    as('scram_app', SCRAM_PW)();
    const c = new pg.Client({
      host: '127.0.0.1',
      port: proxy.port,
      user: 'app',
      password: 'wrong',
      database: 'postgres',
      application_name: 'via-proxy',
    });
    await c.connect();
    try {
      const r = await c.query(
        "select current_user as u, current_setting('application_name') as a, $1::int + 1 as n",
        [41],
      );
      assert.deepEqual(r.rows, [{ u: 'scram_app', a: 'via-proxy', n: 42 }]);
    } finally {
      await c.end();
    }
  });

  test('the trust server: the proxy passes AuthenticationOk through', async () => {
    const trust: StandIn = {
      server: serverWorkload({ port: sharedPostgres.port }),
      credential: async () => released('postgres', 'unused'),
      asked: 0,
    };
    const p = await standInListener(handler, trust, log);
    try {
      const r = await psql({ ...sharedPostgres, port: p.port }, 'x', '', 'postgres', 'select 1');
      assert.deepEqual(r, { ok: true, out: '1' });
      assert.equal(trust.asked, 1);
    } finally {
      await p.close();
    }
  });

  test('bytes the client sends before the login is done reach the server after it', async () => {
    as('scram_app', SCRAM_PW)();
    const startup = startupMessage(
      new Map([
        ['user', 'x'],
        ['database', 'postgres'],
      ]),
    );
    const query = message('Q', Buffer.from('select 6 * 7\0'));
    const reply = await exchange(
      proxy.port,
      Buffer.concat([startup, query, message('X', Buffer.alloc(0))]),
    );
    const types: string[] = [];
    for (let i = 0; i < reply.length; i += 1 + reply.readInt32BE(i + 1))
      types.push(String.fromCharCode(reply[i]!));
    assert.equal(types[0], 'R');
    assert.ok(types.includes('K'));
    assert.deepEqual(types.slice(types.indexOf('Z')), ['Z', 'T', 'D', 'C', 'Z']);
    assert.ok(reply.includes(Buffer.from('42')));
  });

  test('a cancel request reaches the session it names, with the real key', async () => {
    as('scram_app', SCRAM_PW)();
    const c = new pg.Client({
      host: '127.0.0.1',
      port: proxy.port,
      user: 'a',
      database: 'postgres',
    });
    await c.connect();
    try {
      const key = c as unknown as { processID: number; secretKey: number };
      const outcome = c.query('select pg_sleep(120)').then(
        () => 'finished',
        (e: { code?: string }) => e.code,
      );
      // The sleep must have started before the cancel, or the cancel finds nothing to stop.
      const ready = (async () => {
        for (let i = 0; i < 600; i++) {
          const r = await psql(
            pgServer,
            'postgres',
            pgServer.superPassword,
            'postgres',
            "select count(*) from pg_stat_activity where query = 'select pg_sleep(120)' and state = 'active'",
          );
          if (r.out === '1') return;
          await new Promise((res) => setTimeout(res, 100));
        }
        throw new Error('the sleep never started');
      })();
      await ready;
      // A wrong secret does nothing; the right one cancels.
      const before = log.lines.length;
      await exchange(proxy.port, cancelRequest(key.processID, key.secretKey ^ 1));
      assert.match(log.lines.slice(before).join('\n'), /postgres cancel request for no session/);
      await exchange(proxy.port, cancelRequest(key.processID, key.secretKey));
      assert.equal(await outcome, '57014');
    } finally {
      await c.end();
    }
  });
});

suite('refusals in PostgreSQL terms', () => {
  test('a denial is SQLSTATE 28000 naming the failed condition', async () => {
    const denial = {
      reason: 'condition-false',
      policy: 'app-to-db',
      failedCondition: 'client.attributes["unix.uid"] == "1000"',
      correlationId: 'c-1',
    };
    standIn.credential = async () => {
      throw new CredentialDeniedError('db', 'spiffe://example.org/app', denial);
    };
    const c = new pg.Client({
      host: '127.0.0.1',
      port: proxy.port,
      user: 'a',
      database: 'postgres',
    });
    const err = await c.connect().then(
      () => assert.fail('connected'),
      (e: { code?: string; message: string }) => e,
    );
    assert.equal(err.code, '28000');
    assert.match(err.message, /denied for spiffe:\/\/example.org\/app: condition-false/);
    assert.match(err.message, /failed condition: client.attributes\["unix.uid"\] == "1000"/);
    const r = await psql(viaProxy(), 'a', '', 'postgres', 'select 1');
    assert.equal(r.ok, false);
    assert.match(r.out, /FATAL: {2}tessera: access to server workload "db" denied/);
  });

  test('the Tessera server away is 08006', async () => {
    standIn.credential = async () => {
      throw new UnavailableError('the server is unreachable and nothing usable is cached');
    };
    const c = new pg.Client({
      host: '127.0.0.1',
      port: proxy.port,
      user: 'a',
      database: 'postgres',
    });
    const err = await c.connect().then(
      () => assert.fail('connected'),
      (e: { code?: string; message: string }) => e,
    );
    assert.equal(err.code, '08006');
    assert.match(err.message, /no credential for server workload "db": the server is unreachable/);
  });

  test('a brokered password the server rejects: its own error, no password in it', async () => {
    as('scram_app', 'stale-' + SCRAM_PW)();
    const r = await psql(viaProxy(), 'a', '', 'postgres', 'select 1');
    assert.equal(r.ok, false);
    assert.match(r.out, /password authentication failed for user "scram_app"/);
    assert.ok(!r.out.includes(SCRAM_PW));
  });

  test('a cleartext password request without TLS is refused', async () => {
    const clear = await startPasswordPostgres({ auth: 'password' });
    const p = await standInListener(
      handler,
      {
        server: serverWorkload({ port: clear.port }),
        credential: async () => released('postgres', clear.superPassword),
        asked: 0,
      },
      log,
    );
    try {
      const r = await psql({ ...sharedPostgres, port: p.port }, 'a', '', 'postgres', 'select 1');
      assert.equal(r.ok, false);
      assert.match(r.out, /asks for a cleartext password without TLS/);
    } finally {
      await p.close();
      await clear.stop();
    }
  });

  test('a server workload requiring TLS whose server refuses it: 08004, nothing sent', async () => {
    const p = await standInListener(
      handler,
      {
        server: serverWorkload({ port: pgServer.port, tls: true }),
        credential: async () => released('scram_app', SCRAM_PW),
        asked: 0,
      },
      log,
    );
    try {
      const c = new pg.Client({ host: '127.0.0.1', port: p.port, user: 'a', database: 'postgres' });
      const err = await c.connect().then(
        () => assert.fail('connected'),
        (e: { code?: string; message: string }) => e,
      );
      assert.equal(err.code, '08004');
      assert.match(
        err.message,
        /^server workload "db" \(127\.0\.0\.1:\d+\) refuses TLS, which the server workload requires$/,
      );
    } finally {
      await p.close();
    }
  });

  test('malformed startup packets get 08P01 and the proxy keeps serving', async () => {
    as('scram_app', SCRAM_PW)();
    const tooLong = Buffer.alloc(8);
    tooLong.writeInt32BE(2 ** 31 - 1, 0);
    const unterminated = packet(PROTOCOL_3_0, Buffer.from('user\0a\0'));
    const dup = packet(PROTOCOL_3_0, Buffer.from('user\0a\0user\0b\0\0'));
    const short = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0]);
    for (const bad of [tooLong, unterminated, dup, short]) {
      const e = errorAt(await exchange(proxy.port, bad));
      assert.equal(e.code, '08P01', e.message);
      assert.match(e.message, /^invalid startup packet: /);
    }
    const v2 = errorAt(await exchange(proxy.port, packet(2 << 16, Buffer.from('\0'))));
    assert.deepEqual(v2, {
      code: '0A000',
      message: 'unsupported frontend protocol 2.0: the proxy speaks 3.0',
    });
    const r = await psql(viaProxy(), 'a', '', 'postgres', 'select current_user');
    assert.deepEqual(r, { ok: true, out: 'scram_app' });
  });

  test('SSLRequest and GSSENCRequest are answered N, each once', async () => {
    // (psql's default sslmode=prefer asks first, then starts up in the clear: the tests above.)
    const ssl = packet(80877103);
    const gss = packet(80877104);
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const s = net.connect(proxy.port, '127.0.0.1');
      s.on('data', (c: Buffer) => {
        chunks.push(c);
        const all = Buffer.concat(chunks);
        if (all.length === 1) s.write(gss);
        if (all.length === 2) s.write(ssl);
      });
      s.on('error', reject);
      s.on('close', () => resolve(Buffer.concat(chunks)));
      s.write(ssl);
    });
    assert.equal(reply.subarray(0, 2).toString(), 'NN');
    assert.deepEqual(errorAt(reply, 2), { code: '08P01', message: 'unexpected ssl request' });
  });
});
