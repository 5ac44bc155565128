// caching_sha2_password, which the MariaDB here does not implement server-side: the proxy's
// client side against a test server that verifies per MySQL's documented algorithm
// (testing/caching-sha2-server.ts), with the mysql2 driver as the independent check that the
// test server verifies what a real client sends (fast path, full authentication with RSA and
// with TLS, a wrong password refused).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { makeTlsFiles } from '../../../../test/helpers/https.ts';
import { startStandIn } from '../testing/stand-in-listener.ts';
import { createMysqlHandler } from './mysql-handler.ts';
import { startCachingSha2Server } from './testing/caching-sha2-server.ts';

const USER = 'app_sha2';
const PASSWORD = 'a password only the test knows ✓';

async function login(
  port: number,
  user: string,
  password: string,
  ssl?: { ca: string },
): Promise<void> {
  const c = await mysql.createConnection({
    host: '127.0.0.1',
    port,
    user,
    password,
    database: 'orders',
    connectTimeout: 20_000,
    // Without TLS, mysql2 fetches the server's RSA key only when allowed (see docs: the proxy
    // does, as MySQL's --get-server-public-key).
    ...(ssl ? { ssl } : { allowPublicKeyRetrieval: true }),
  });
  try {
    await c.ping();
    await c.query('DO 1');
  } finally {
    await c.end();
  }
}

function tlsFiles(): { ca: string; key: string; cert: string } {
  const t = makeTlsFiles(mkdtempSync(path.join(os.tmpdir(), 'tessera-sha2-')));
  return {
    ca: t.caPem,
    key: readFileSync(t.keyFile, 'utf8'),
    cert: readFileSync(t.certFile, 'utf8'),
  };
}

test('mysql2 and the test server agree: full (RSA), fast, wrong password, full over TLS', async () => {
  const files = tlsFiles();
  const server = await startCachingSha2Server({ user: USER, password: PASSWORD, tls: files });
  try {
    await login(server.port, USER, PASSWORD);
    await login(server.port, USER, PASSWORD);
    await assert.rejects(login(server.port, USER, 'wrong'), /Access denied/);
    assert.deepEqual(
      server.logins.map((l) => l.path),
      ['full-rsa', 'fast', 'denied'],
    );
  } finally {
    await server.close();
  }
  const tlsServer = await startCachingSha2Server({ user: USER, password: PASSWORD, tls: files });
  try {
    await login(tlsServer.port, USER, PASSWORD, { ca: files.ca });
    assert.deepEqual(
      tlsServer.logins.map((l) => l.path),
      ['full-tls'],
    );
  } finally {
    await tlsServer.close();
  }
});

test('the proxy logs in with caching_sha2_password: full auth with RSA, then the fast path', async () => {
  const server = await startCachingSha2Server({ user: USER, password: PASSWORD });
  const proxy = await startStandIn({
    handler: createMysqlHandler({ timeoutMs: 5000 }),
    server: { host: '127.0.0.1', port: server.port, protocol: 'mysql' },
    credential: {
      value: { kind: 'password', username: USER, password: PASSWORD },
      expiresAt: null,
      leaseId: '',
    },
  });
  try {
    await login(proxy.port, 'someone', 'made-up');
    await login(proxy.port, 'someone', '');
    assert.deepEqual(server.logins, [
      { user: USER, path: 'full-rsa', database: 'orders' },
      { user: USER, path: 'fast', database: 'orders' },
    ]);
  } finally {
    await proxy.close();
    await server.close();
  }
});

test('an auth switch from mysql_native_password to caching_sha2_password is followed', async () => {
  const server = await startCachingSha2Server({
    user: USER,
    password: PASSWORD,
    greetWith: 'mysql_native_password',
  });
  const proxy = await startStandIn({
    handler: createMysqlHandler({ timeoutMs: 5000 }),
    server: { host: '127.0.0.1', port: server.port, protocol: 'mysql' },
    credential: {
      value: { kind: 'password', username: USER, password: PASSWORD },
      expiresAt: null,
      leaseId: '',
    },
  });
  try {
    await login(proxy.port, 'someone', '');
    await login(proxy.port, 'someone', '');
    assert.deepEqual(
      server.logins.map((l) => l.path),
      ['full-rsa', 'fast'],
    );
  } finally {
    await proxy.close();
    await server.close();
  }
});

test('TLS upstream: full auth sends the password inside TLS; an unverified server is refused', async () => {
  const files = tlsFiles();
  const server = await startCachingSha2Server({ user: USER, password: PASSWORD, tls: files });
  const credential = {
    value: { kind: 'password' as const, username: USER, password: PASSWORD },
    expiresAt: null,
    leaseId: '',
  };
  const proxy = await startStandIn({
    handler: createMysqlHandler({ timeoutMs: 5000 }),
    server: { host: '127.0.0.1', port: server.port, protocol: 'mysql', tls: true, tlsCa: files.ca },
    credential,
  });
  const untrusted = await startStandIn({
    handler: createMysqlHandler({ timeoutMs: 5000 }),
    server: {
      name: 'orders-db',
      host: '127.0.0.1',
      port: server.port,
      protocol: 'mysql',
      tls: true,
    },
    credential,
  });
  try {
    await login(proxy.port, 'someone', '');
    assert.deepEqual(
      server.logins.map((l) => l.path),
      ['full-tls'],
    );
    await assert.rejects(
      login(untrusted.port, 'someone', ''),
      /tessera proxy: server workload "orders-db" unreachable: TLS to 127\.0\.0\.1: (UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN)/,
    );
    assert.equal(server.logins.length, 1, 'no credential reached the unverified server');
  } finally {
    await proxy.close();
    await untrusted.close();
    await server.close();
  }
});
