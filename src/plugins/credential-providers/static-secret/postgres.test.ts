// static-secret as a PostgreSQL password, on a real server that checks passwords (a throwaway
// scram-sha-256 cluster: the shared 5432 server trusts every local login).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createCredentialProvider } from '../catalog.ts';
import { MemorySecrets, deps, record, request } from '../testing/fakes.ts';
import { type PostgresServer, psql, startPasswordPostgres } from '../testing/password-postgres.ts';

describe('static-secret: a PostgreSQL password from the secret store', () => {
  let server: PostgresServer;
  const password = randomBytes(18).toString('base64url');

  before(async () => {
    server = await startPasswordPostgres();
    const su = new pg.Client({
      connectionString: server.url('postgres', server.superPassword, 'postgres'),
    });
    await su.connect();
    await su.query(`create role legacy_app login password '${password}'`);
    await su.end();
  });
  after(() => server?.stop());

  for (const [label, config, secret] of [
    [
      'a JSON pair',
      { format: 'username-password' },
      () => JSON.stringify({ username: 'legacy_app', password }),
    ],
    [
      'the username in config',
      { format: 'username-password', username: 'legacy_app' },
      () => password,
    ],
  ] as const) {
    it(`the released credential logs in (${label}); a wrong one does not`, async () => {
      const secrets = new MemorySecrets().set('legacy-db', secret());
      const p = createCredentialProvider(
        record('static-secret', { secret: 'legacy-db', ...config }, 'legacy-db'),
        deps({ secrets }),
      );
      const c = await p.release(request());
      assert.equal(c.expiresAt, null);
      assert.equal(c.value.kind, 'password');
      const v = c.value.kind === 'password' ? c.value : { username: '', password: '' };
      assert.deepEqual(
        await psql(server, v.username, v.password, 'postgres', 'select current_user'),
        {
          ok: true,
          out: 'legacy_app',
        },
      );
      const client = new pg.Client({
        connectionString: server.url(v.username, v.password, 'postgres'),
      });
      await client.connect();
      assert.deepEqual((await client.query('select current_user as u')).rows, [
        { u: 'legacy_app' },
      ]);
      await client.end();
      const wrong = await psql(server, v.username, `${v.password}x`, 'postgres', 'select 1');
      assert.equal(wrong.ok, false);
      assert.match(wrong.out, /password authentication failed for user "legacy_app"/);
    });
  }
});
