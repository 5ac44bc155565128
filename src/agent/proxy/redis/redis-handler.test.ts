// The Redis handler between unmodified clients (redis-cli, the `redis` npm client) and the real
// Redis on :6379, with an ACL user and password only this test knows; and a TLS redis-server the
// test starts. The ProxyConnection is a stand-in (fixed credential); proxy-core's black-box tests
// run the handler inside the agent.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createClient } from 'redis';
import type { Credential } from '../../../core/access.ts';
import { CredentialDeniedError } from '../../credentials/credential-service.ts';
import { startStandIn, type StandIn } from '../testing/stand-in-listener.ts';
import { makeTlsFiles } from '../../../../test/helpers/https.ts';
import { freePort, waitFor } from '../../../../test/helpers/ports.ts';
import { createRedisHandler } from './redis-handler.ts';

const run = promisify(execFile);
const USER = `tessera_t_${randomBytes(4).toString('hex')}`;
const PASSWORD = randomBytes(18).toString('base64url');
const handler = createRedisHandler({ timeoutMs: 2000 });
const password = (username: string, pw: string): Credential => ({
  value: { kind: 'password', username, password: pw },
  expiresAt: null,
  leaseId: '',
});

async function cli(port: number, ...args: string[]): Promise<string> {
  const r = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
    timeout: 20_000,
  }).catch((e: { stdout: string; stderr: string }) => e);
  return (r.stdout + r.stderr).trim();
}

/** Raw bytes to `port`, and everything it answers until it closes (bounded). */
function raw(port: number, bytes: Buffer | string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no close within 20 s; got ${Buffer.concat(got).toString()}`));
    }, 20_000);
    s.on('data', (c: Buffer) => got.push(c));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(got).toString());
    });
    s.write(bytes);
  });
}

let proxy: StandIn;

before(async () => {
  await run('redis-cli', ['ACL', 'SETUSER', USER, 'on', `>${PASSWORD}`, '~*', '&*', '+@all']);
  proxy = await startStandIn({
    handler,
    server: { host: '127.0.0.1', port: 6379, protocol: 'redis' },
    credential: password(USER, PASSWORD),
  });
});

after(async () => {
  await proxy.close();
  await run('redis-cli', ['ACL', 'DELUSER', USER]);
  assert.ok(
    proxy.logs.every((l) => !l.includes(PASSWORD)),
    'the password is never logged',
  );
});

test('redis-cli without a password is the injected user; its own AUTH changes nothing', async () => {
  assert.equal(await cli(proxy.port, 'ACL', 'WHOAMI'), USER);
  assert.equal(
    await cli(proxy.port, '--user', 'nobody', '-a', 'guess', '--no-auth-warning', 'ACL', 'WHOAMI'),
    USER,
  );
  assert.equal(await cli(proxy.port, '-a', 'guess', '--no-auth-warning', 'ACL', 'WHOAMI'), USER);
  const key = `tessera-test-${USER}`;
  assert.equal(await cli(proxy.port, 'SET', key, 'v1'), 'OK');
  assert.equal(await cli(proxy.port, 'GET', key), 'v1');
  assert.equal(await cli(proxy.port, 'DEL', key), '1');
});

test('redis-cli -3 (HELLO 3) keeps RESP3 and the injected identity', async () => {
  const out = await cli(
    proxy.port,
    '-3',
    '--user',
    'nobody',
    '-a',
    'x',
    '--no-auth-warning',
    'HELLO',
  );
  assert.match(out, /proto\s*\n?\s*3/);
  assert.equal(await cli(proxy.port, '-3', 'ACL', 'WHOAMI'), USER);
});

test('the redis npm client (RESP2 and RESP3, with a password it made up) is the injected user', async () => {
  for (const RESP of [2, 3] as const) {
    const c = createClient({
      url: `redis://someone:made-up@127.0.0.1:${proxy.port}`,
      RESP,
      socket: { reconnectStrategy: false, connectTimeout: 20_000 },
    });
    c.on('error', () => {});
    await c.connect();
    try {
      assert.equal(await c.sendCommand(['ACL', 'WHOAMI']), USER);
      const key = `tessera-test-${USER}-${RESP}`;
      // Pipelined: replies keep their order across a mid-session AUTH.
      const [setReply, authReply, getReply] = await Promise.all([
        c.set(key, 'pipelined'),
        c.sendCommand(['AUTH', 'someone', 'else']),
        c.get(key),
      ]);
      assert.deepEqual([setReply, authReply, getReply], ['OK', 'OK', 'pipelined']);
      await c.del(key);
      assert.equal(await c.sendCommand(['ACL', 'WHOAMI']), USER);
    } finally {
      c.destroy();
    }
  }
});

test('a denial is -NOPERM naming the failed condition', async () => {
  const denied = await startStandIn({
    handler,
    server: { name: 'cache', host: '127.0.0.1', port: 6379, protocol: 'redis' },
    credential: new CredentialDeniedError('cache', 'spiffe://example.org/app', {
      reason: 'condition-false',
      policy: 'app-to-cache',
      failedCondition: 'request.time.getHours() < 18',
      correlationId: 'c1',
    }),
  });
  try {
    assert.equal(
      await cli(denied.port, 'PING'),
      'NOPERM access to server workload "cache" denied for spiffe://example.org/app: condition-false (policy "app-to-cache", failed condition: request.time.getHours() < 18)',
    );
  } finally {
    await denied.close();
  }
});

test('a wrong injected credential is refused without echoing it; a token is the default user password', async () => {
  const wrong = await startStandIn({
    handler,
    server: { name: 'cache', host: '127.0.0.1', port: 6379, protocol: 'redis' },
    credential: password(USER, 'not-the-password'),
  });
  try {
    const out = await cli(wrong.port, 'PING');
    assert.equal(out, 'ERR tessera proxy: server workload "cache" refused the injected credential');
  } finally {
    await wrong.close();
  }
  // The default user here has no password: AUTH <token> is refused, by Redis, as for any password.
  const token = await startStandIn({
    handler,
    server: { name: 'cache', host: '127.0.0.1', port: 6379, protocol: 'redis' },
    credential: { value: { kind: 'token', token: 'tok' }, expiresAt: null, leaseId: '' },
  });
  try {
    assert.match(await cli(token.port, 'PING'), /refused the injected credential/);
  } finally {
    await token.close();
  }
});

test('garbage RESP gets a protocol error and a close; the proxy keeps serving', async () => {
  assert.equal(
    await raw(proxy.port, 'PING\r\n'),
    '-ERR Protocol error: expected a RESP array of bulk strings (inline commands are not supported)\r\n',
  );
  assert.equal(
    await raw(proxy.port, '*1\r\n$4\r\nPINGxx'),
    '-ERR Protocol error: expected CRLF after a bulk string\r\n',
  );
  assert.equal(
    await raw(proxy.port, `*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$99999\r\n${'a'.repeat(99999)}\r\n`),
    '-ERR Protocol error: AUTH, HELLO or RESET too long\r\n',
  );
  assert.equal(await cli(proxy.port, 'PING'), 'PONG');
});

test('RESET is never forwarded: the commands before it are answered, then the connection closes', async () => {
  // Forwarded, RESET would leave the connection as Redis's `default` user (nopass, +@all here).
  const whoami = '*2\r\n$3\r\nACL\r\n$6\r\nWHOAMI\r\n';
  const got = await raw(proxy.port, `${whoami}*1\r\n$5\r\nreset\r\n${whoami}`);
  assert.equal(got, `$${USER.length}\r\n${USER}\r\n`);
  assert.ok(proxy.logs.some((l) => l.includes('redis RESET refused')));
  assert.equal(await cli(proxy.port, 'ACL', 'WHOAMI'), USER, 'the proxy keeps serving');
});

test('TLS upstream: verified against the server workload CA; an unknown CA is refused', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-redis-tls-'));
  const tls = makeTlsFiles(dir);
  const port = await freePort();
  const server: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      '0',
      '--tls-port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--tls-cert-file',
      tls.certFile,
      '--tls-key-file',
      tls.keyFile,
      '--tls-auth-clients',
      'no',
      '--save',
      '',
      '--appendonly',
      'no',
      '--requirepass',
      PASSWORD,
      '--dir',
      dir,
    ],
    { stdio: 'ignore' },
  );
  const token: Credential = {
    value: { kind: 'token', token: PASSWORD },
    expiresAt: null,
    leaseId: '',
  };
  const good = await startStandIn({
    handler,
    server: { host: '127.0.0.1', port, protocol: 'redis', tls: true, tlsCa: tls.caPem },
    credential: token,
  });
  const untrusted = await startStandIn({
    handler,
    server: { name: 'cache', host: '127.0.0.1', port, protocol: 'redis', tls: true },
    credential: token,
  });
  try {
    await waitFor(async () => (await cli(good.port, 'PING')) === 'PONG', 30_000, 100);
    assert.equal(await cli(good.port, 'ACL', 'WHOAMI'), 'default');
    assert.match(
      await cli(untrusted.port, 'PING'),
      /^ERR tessera proxy: server workload "cache" unreachable: TLS to 127\.0\.0\.1: (UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN)$/,
    );
  } finally {
    await good.close();
    await untrusted.close();
    server.kill();
  }
});
