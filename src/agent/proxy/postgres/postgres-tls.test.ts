// The upstream leg over TLS: a throwaway cluster serving a certificate from a test CA and asking
// for a cleartext password (sent only inside verified TLS). The server workload's CA must verify
// the server's certificate, or nothing is sent.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { makeTlsFiles } from '../../../../test/helpers/https.ts';
import {
  type PostgresServer,
  psql,
  sharedPostgres,
  startPasswordPostgres,
} from '../../../plugins/credential-providers/testing/password-postgres.ts';
import { createPostgresHandler } from './postgres-handler.ts';
import {
  MemoryLog,
  released,
  serverWorkload,
  standInListener,
} from './testing/stand-in-connection.ts';

const log = new MemoryLog();
const handler = createPostgresHandler();
const dirs = [1, 2].map(() => mkdtempSync(path.join(tmpdir(), 'tessera-pg-tls-')));
const [right, wrong] = dirs.map((d) => makeTlsFiles(d));
let pgServer: PostgresServer;

before(async () => {
  pgServer = await startPasswordPostgres({ auth: 'password', tls: right! });
});

after(async () => {
  await pgServer?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  for (const line of log.lines) assert.ok(!line.includes(pgServer.superPassword), line);
});

async function throughProxy(tlsCa: string, sql: string) {
  const p = await standInListener(
    handler,
    {
      server: serverWorkload({ port: pgServer.port, tls: true, tlsCa }),
      credential: async () => released('postgres', pgServer.superPassword),
      asked: 0,
    },
    log,
  );
  try {
    return await psql({ ...sharedPostgres, port: p.port }, 'app', '', 'postgres', sql);
  } finally {
    await p.close();
  }
}

test('TLS verified against the server workload CA, then the cleartext password inside it', async () => {
  const r = await throughProxy(
    right!.caPem,
    'select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()',
  );
  assert.deepEqual(r, { ok: true, out: 'postgres|t' });
});

test('a server certificate from another CA: a clear error and no password sent', async () => {
  const r = await throughProxy(wrong!.caPem, 'select 1');
  assert.equal(r.ok, false);
  assert.match(
    r.out,
    /FATAL: {2}TLS to server workload "db" \(127\.0\.0\.1:\d+\) failed: unable to verify the first certificate \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\), verified against the server workload's CA$/,
  );
  assert.ok(!r.out.includes(pgServer.superPassword));
});
