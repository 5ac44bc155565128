// The explicit proxy with unmodified clients: curl (--proxy, --cacert with the proxy CA) and
// Node's fetch through HTTPS_PROXY (NODE_USE_ENV_PROXY=1), to real HTTP/HTTPS test servers that
// check the injected header. Decisions come from a stand-in for the agent's ProxyConnections.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import type { ServerWorkload } from '../../../core/access.ts';
import { startExplicitProxy, type ExplicitProxy } from './explicit-proxy.ts';
import { ProxyCa } from './proxy-ca.ts';
import { startEchoServer, type Echo, type EchoServer } from './testing/echo-server.ts';
import {
  quietLog,
  serverWorkload,
  StandInConnections,
  type StandInDecision,
} from './testing/stand-in-connections.ts';

const TOKEN = 'tok-b71e55d0aa';
const clock = { now: () => Date.now() };
let dir: string;
let plain: EchoServer;
let secure: EchoServer;
let other: EchoServer;
let connections: StandInConnections;
let decide: (w: ServerWorkload) => StandInDecision;
let proxy: ExplicitProxy;
let passProxy: ExplicitProxy;
let ca: ProxyCa;
const allow = (): StandInDecision => ({ allow: { kind: 'token', token: TOKEN } });

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'tessera-proxy-http-'));
  [plain, secure, other] = await Promise.all([
    startEchoServer(false),
    startEchoServer(true),
    startEchoServer(false),
  ]);
  decide = allow;
  connections = new StandInConnections(
    [
      serverWorkload({
        name: 'plain',
        host: '127.0.0.1',
        port: plain.port,
        present: 'header:X-Api-Key',
      }),
      serverWorkload({
        name: 'secure',
        host: 'localhost',
        port: secure.port,
        protocol: 'https',
        tlsCa: secure.caPem,
        tlsDecrypt: true,
        present: 'authorization-bearer',
      }),
    ],
    (w) => decide(w),
  );
  ca = await ProxyCa.open(dir, clock);
  writeFileSync(path.join(dir, 'ca-for-clients.pem'), ca.certPem);
  const common = {
    host: '127.0.0.1',
    port: 0,
    connections,
    ca,
    log: quietLog,
    tlsHandshakeTimeoutMs: 700,
  };
  proxy = await startExplicitProxy({ ...common, passthrough: false });
  passProxy = await startExplicitProxy({ ...common, passthrough: true });
});

after(async () => {
  await proxy.close();
  await passProxy.close();
  await Promise.all([plain.close(), secure.close(), other.close()]);
  rmSync(dir, { recursive: true, force: true });
});

function run(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 60_000 }, (e, stdout, stderr) =>
      resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** curl through a proxy: the status line's code and the body. */
async function curl(p: ExplicitProxy, url: string, ...extra: string[]) {
  const r = await run('curl', [
    '-sS',
    '--proxy',
    `http://127.0.0.1:${p.port}`,
    '-w',
    '\n%{http_code}',
    ...extra,
    url,
  ]);
  const i = r.stdout.lastIndexOf('\n');
  return { ...r, status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
}

test('curl: plain HTTP to a server workload gets the credential; the echo comes back masked', async () => {
  const r = await curl(proxy, `http://127.0.0.1:${plain.port}/v1/x?y=1`, '-H', 'X-Api-Key: mine');
  assert.equal(r.status, 200, r.stderr);
  assert.equal(plain.received.at(-1)!.headers['x-api-key'], TOKEN);
  assert.equal(plain.received.at(-1)!.url, '/v1/x?y=1');
  const echo = JSON.parse(r.body) as Echo;
  assert.equal(echo.headers['x-api-key'], '*'.repeat(TOKEN.length));
  assert.ok(!r.body.includes(TOKEN));
});

test('curl: CONNECT to a tls_decrypt server workload is terminated with the proxy CA and re-originated verified', async () => {
  const r = await curl(
    proxy,
    `https://localhost:${secure.port}/hello`,
    '--cacert',
    path.join(dir, 'ca-for-clients.pem'),
  );
  assert.equal(r.status, 200, r.stderr);
  assert.equal(secure.received.at(-1)!.headers.authorization, `Bearer ${TOKEN}`);
  assert.deepEqual(
    connections.asked.slice(-2).map((a) => a.request),
    [
      { method: 'CONNECT', path: '', host: 'localhost' },
      { method: 'GET', path: '/hello', host: 'localhost' },
    ],
  );
  // Without the proxy CA the client refuses the interception.
  const untrusted = await curl(proxy, `https://localhost:${secure.port}/hello`);
  assert.notEqual(untrusted.code, 0);
  assert.match(untrusted.stderr, /certificate/i);
});

test('curl over HTTP/2 inside the decrypted tunnel (ALPN h2)', async () => {
  const r = await run('curl', [
    '-sS',
    '--http2',
    '--proxy',
    `http://127.0.0.1:${proxy.port}`,
    '--cacert',
    path.join(dir, 'ca-for-clients.pem'),
    '-o',
    '/dev/null',
    '-w',
    '%{http_version} %{http_code}',
    `https://localhost:${secure.port}/h2`,
  ]);
  assert.equal(r.stdout, '2 200', r.stderr);
  assert.equal(secure.received.at(-1)!.headers.authorization, `Bearer ${TOKEN}`);
});

test("Node's fetch through HTTPS_PROXY (NODE_USE_ENV_PROXY=1) trusting the proxy CA", async () => {
  const script = `const r = await fetch('https://localhost:${secure.port}/from-node', { headers: { authorization: 'Bearer mine' } });
console.log(r.status, (await r.json()).headers.authorization);`;
  const r = await run(process.execPath, ['--input-type=module', '-e', script], {
    NODE_USE_ENV_PROXY: '1',
    HTTPS_PROXY: `http://127.0.0.1:${proxy.port}`,
    NODE_EXTRA_CA_CERTS: path.join(dir, 'ca-for-clients.pem'),
    NO_PROXY: '',
  });
  assert.equal(r.stdout.trim(), `200 Bearer ${'*'.repeat(TOKEN.length)}`, r.stderr);
  assert.equal(secure.received.at(-1)!.url, '/from-node');
  assert.equal(secure.received.at(-1)!.headers.authorization, `Bearer ${TOKEN}`);
});

test('denied CONNECT is 403 naming the failed condition, and no certificate is issued', async () => {
  decide = () => ({ deny: 'condition-false', policy: 'p1', failedCondition: 'client.x == 1' });
  try {
    const r = await curl(
      proxy,
      `https://localhost:${secure.port}/x`,
      '--cacert',
      path.join(dir, 'ca-for-clients.pem'),
      '-v',
    );
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /CONNECT tunnel failed, response 403|< HTTP\/1\.1 403/);
  } finally {
    decide = allow;
  }
});

test('not a server workload: 403 (IP literal named), unless passthrough forwards it untouched', async () => {
  const n = other.received.length;
  const r = await curl(proxy, `http://127.0.0.1:${other.port}/x`);
  assert.equal(r.status, 403);
  assert.match(JSON.parse(r.body).error, /^IP address 127\.0\.0\.1:\d+ is not a server workload/);
  const c = await rawConnect(proxy.port, `10.1.2.3:443`);
  assert.match(c, /^HTTP\/1\.1 403 [^]*IP address 10\.1\.2\.3:443 is not a server workload/);
  assert.equal(other.received.length, n);
  // Passthrough: forwarded as is, with the client's own header and nothing added.
  const p = await curl(passProxy, `http://127.0.0.1:${other.port}/x`, '-H', 'Authorization: mine');
  assert.equal(p.status, 200);
  assert.equal(other.received.at(-1)!.headers.authorization, 'mine');
  assert.equal(other.received.at(-1)!.headers['accept-encoding'], undefined);
  const t = await curl(passProxy, `http://127.0.0.1:${other.port}/tunnelled`, '--proxytunnel');
  assert.equal(t.status, 200);
  assert.equal(other.received.at(-1)!.url, '/tunnelled');
});

test('a CONNECT client that never finishes TLS is cut off; the proxy keeps serving', async () => {
  const s = net.connect(proxy.port, '127.0.0.1');
  const closed = new Promise<string>((resolve) => {
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('close', () => resolve(out));
    s.on('error', () => {});
  });
  s.write(`CONNECT localhost:${secure.port} HTTP/1.1\r\nHost: localhost:${secure.port}\r\n\r\n`);
  s.write(Buffer.from([0x16, 0x03, 0x01])); // the start of a ClientHello, then nothing
  const out = await closed;
  assert.match(out, /^HTTP\/1\.1 200 Connection Established/);
  const r = await curl(proxy, `http://127.0.0.1:${plain.port}/after`);
  assert.equal(r.status, 200);
});

test('the proxy CA: key 0600, the same CA after a restart, leaves for exactly the host', async () => {
  assert.equal(statSync(path.join(dir, 'proxy-ca.key')).mode & 0o777, 0o600);
  const again = await ProxyCa.open(dir, clock);
  assert.equal(again.certPem, ca.certPem);
  const peer = await new Promise<tls.PeerCertificate>((resolve, reject) => {
    const s = net.connect(proxy.port, '127.0.0.1', () =>
      s.write(`CONNECT localhost:${secure.port} HTTP/1.1\r\nHost: x\r\n\r\n`),
    );
    s.once('data', () => {
      const t = tls.connect({ socket: s, servername: 'localhost', ca: ca.certPem }, () => {
        resolve(t.getPeerCertificate());
        t.destroy();
      });
      t.on('error', reject);
    });
  });
  assert.equal(peer.subjectaltname, 'DNS:localhost');
  const lifetime = Date.parse(peer.valid_to) - Date.parse(peer.valid_from);
  assert.ok(lifetime <= 3_660_000 + 1000, `leaf lifetime ${lifetime}`);
});

function rawConnect(port: number, target: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('close', () => resolve(out));
    s.on('error', () => {});
    s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}
