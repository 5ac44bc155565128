// The HTTP handler behind a local listener (a stand-in for proxy-core's), with real clients
// (node:http keep-alive, node:http2 prior knowledge, raw sockets for bad input) and real upstream
// servers (HTTP, and HTTPS with its own CA).
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { startEchoServer, type Echo, type EchoServer } from './testing/echo-server.ts';
import {
  serverWorkload,
  standInListener,
  StandInConnections,
  type StandInDecision,
} from './testing/stand-in-connections.ts';
import { createHttpHandler } from './http-handler.ts';
import type { ServerWorkload } from '../../../core/access.ts';

const TOKEN = 'tok-3f9a1c0e7b';
let plain: EchoServer;
let secure: EchoServer;
let decide: (w: ServerWorkload) => StandInDecision = () => ({
  allow: { kind: 'token', token: TOKEN },
});
let connections: StandInConnections;
const handler = createHttpHandler({ headTimeoutMs: 700, maxHeadBytes: 4096 });
const listeners: Array<{ port: number; close(): Promise<void> }> = [];

async function listen(w: ServerWorkload): Promise<number> {
  const l = await standInListener(connections, w, (s, conn) => handler.handle(s, conn));
  listeners.push(l);
  return l.port;
}

before(async () => {
  plain = await startEchoServer(false);
  secure = await startEchoServer(true);
  connections = new StandInConnections([], (w) => decide(w));
});

after(async () => {
  for (const l of listeners) await l.close();
  await plain.close();
  await secure.close();
});

function request(
  port: number,
  path: string,
  o: {
    method?: string;
    headers?: http.OutgoingHttpHeaders;
    body?: string;
    agent?: http.Agent;
  } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: o.method ?? 'GET',
        headers: o.headers ?? {},
        agent: o.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

/** Sends raw bytes and reads until the server closes (bounded by a deadline). */
function raw(port: number, bytes: string, deadlineMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no close within ${deadlineMs} ms; got ${out}`));
    }, deadlineMs);
    s.on('data', (d) => (out += d.toString()));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    s.on('error', () => {});
    s.write(bytes);
  });
}

test('HTTP/1.1 keep-alive: every request decided and injected, one upstream connection reused', async () => {
  const w = serverWorkload({
    name: 'api',
    host: '127.0.0.1',
    port: plain.port,
    present: 'authorization-bearer',
    pathPrefix: '/v1',
  });
  const port = await listen(w);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const socketsBefore = plain.sockets();
  const asked = connections.asked.length;
  for (let i = 0; i < 3; i++) {
    const r = await request(port, `/v1/items/${i}`, {
      method: 'POST',
      headers: { authorization: 'Bearer client-chosen', 'content-type': 'text/plain' },
      body: `body ${i}`,
      agent,
    });
    assert.equal(r.status, 200);
    const echo = JSON.parse(r.body) as Echo;
    assert.equal(echo.headers.host, `127.0.0.1:${plain.port}`);
    assert.equal(echo.body, `body ${i}`);
    assert.equal(echo.headers['accept-encoding'], 'identity');
    // What the server saw is the injected credential; what came back is masked.
    assert.equal(plain.received.at(-1)!.headers.authorization, `Bearer ${TOKEN}`);
    assert.equal(echo.headers.authorization, `Bearer ${'*'.repeat(TOKEN.length)}`);
    assert.equal(r.headers['x-echo-authorization'], `Bearer ${'*'.repeat(TOKEN.length)}`);
  }
  agent.destroy();
  assert.equal(plain.sockets() - socketsBefore, 1, 'one upstream connection for three requests');
  assert.deepEqual(
    connections.asked.slice(asked).map((a) => a.request),
    [0, 1, 2].map((i) => ({ method: 'POST', path: `/v1/items/${i}`, host: '127.0.0.1' })),
  );
  // Outside the prefix: refused, no decision asked.
  const out = await request(port, '/v2/x');
  assert.equal(out.status, 403);
  assert.match(JSON.parse(out.body).error, /outside server workload "api" \(path prefix \/v1\)/);
});

test('HTTP/2 prior knowledge through a local listener, upstream HTTPS verified with its CA', async () => {
  const w = serverWorkload({
    name: 'secure-api',
    host: 'localhost',
    port: secure.port,
    protocol: 'https',
    tlsCa: secure.caPem,
    present: 'header:X-Api-Key',
  });
  const port = await listen(w);
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    for (const path of ['/a?x=1', '/b']) {
      const { status, body } = await new Promise<{ status: number; body: string }>(
        (resolve, reject) => {
          const s = session.request({ ':path': path, ':method': 'GET', 'x-api-key': 'mine' });
          let status = 0;
          let body = '';
          s.on('response', (h) => (status = Number(h[':status'])));
          s.on('data', (d: Buffer) => (body += d.toString()));
          s.on('end', () => resolve({ status, body }));
          s.on('error', reject);
          s.end();
        },
      );
      assert.equal(status, 200);
      const echo = JSON.parse(body) as Echo;
      assert.equal(echo.url, path);
      assert.equal(echo.headers.host, `localhost:${secure.port}`);
      assert.equal(echo.headers['x-api-key'], '*'.repeat(TOKEN.length));
      assert.equal(secure.received.at(-1)!.headers['x-api-key'], TOKEN);
    }
  } finally {
    session.close();
  }
});

test('an upstream whose certificate does not verify is 502, the credential never sent', async () => {
  const w = serverWorkload({
    name: 'wrong-ca',
    host: 'localhost',
    port: secure.port,
    protocol: 'https',
    present: 'authorization-bearer',
  });
  const n = secure.received.length;
  const r = await request(await listen(w), '/x');
  assert.equal(r.status, 502);
  assert.match(JSON.parse(r.body).error, /could not reach localhost:\d+: .*certificate/i);
  assert.equal(secure.received.length, n);
});

test('denial is 403 JSON naming the failed condition; server away is 503', async () => {
  const w = serverWorkload({
    name: 'denied',
    host: '127.0.0.1',
    port: plain.port,
    present: 'basic',
  });
  const port = await listen(w);
  decide = () => ({ deny: 'condition-false', policy: 'web-api', failedCondition: 'now.hour < 18' });
  try {
    const r = await request(port, '/x');
    assert.equal(r.status, 403);
    assert.deepEqual(JSON.parse(r.body), {
      error:
        'access to server workload "denied" denied for spiffe://example.org/web: condition-false (policy "web-api", failed condition: now.hour < 18)',
      reason: 'condition-false',
      policy: 'web-api',
      failed_condition: 'now.hour < 18',
      correlation_id: 'c-1',
    });
    decide = () => ({ unavailable: true });
    const away = await request(port, '/x');
    assert.equal(away.status, 503);
    assert.match(JSON.parse(away.body).error, /the server is away/);
  } finally {
    decide = () => ({ allow: { kind: 'token', token: TOKEN } });
  }
});

test('query presentation replaces the client parameter; a redirect is passed back, not followed, masked', async () => {
  const w = serverWorkload({
    name: 'q',
    host: '127.0.0.1',
    port: plain.port,
    present: 'query:key',
  });
  const port = await listen(w);
  const r = await request(port, '/redirect?key=mine&a=1');
  assert.equal(r.status, 302);
  assert.equal(plain.received.at(-1)!.url, `/redirect?a=1&key=${TOKEN}`);
  assert.equal(
    r.headers.location,
    `https://elsewhere.example/redirect?a=1&key=${'*'.repeat(TOKEN.length)}`,
  );
});

test('smuggling shapes are 400 and never reach the server; the listener keeps serving', async () => {
  const w = serverWorkload({
    name: 'smuggle',
    host: '127.0.0.1',
    port: plain.port,
    present: 'authorization-bearer',
  });
  const port = await listen(w);
  const n = plain.received.length;
  const attacks: Array<[string, string]> = [
    [
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n',
      'both Content-Length and Transfer-Encoding',
    ],
    [
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhello',
      'more than one Content-Length',
    ],
    [
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n',
      'a Transfer-Encoding other than chunked alone',
    ],
    [
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
      'whitespace before the colon in header line 2',
    ],
    [
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX: a\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n',
      'a bare CR or LF in the trailers',
    ],
  ];
  for (const [a, why] of attacks) {
    const out = await raw(port, a);
    assert.match(out, /^HTTP\/1\.1 400 /, a);
    assert.equal(
      JSON.parse(out.slice(out.indexOf('\r\n\r\n') + 4)).error,
      `malformed HTTP request: ${why}`,
    );
    assert.match(out, /\r\nconnection: close\r\n/);
  }
  assert.equal(plain.received.length, n);
  assert.equal((await request(port, '/ok')).status, 200);
});

test('an oversized head is 431; a head that never completes is 408 and closed', async () => {
  const w = serverWorkload({ name: 'bounds', host: '127.0.0.1', port: plain.port });
  const port = await listen(w);
  const big = await raw(port, `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(5000)}\r\n\r\n`);
  assert.match(big, /^HTTP\/1\.1 431 /);
  const slow = await raw(port, 'GET / HTTP/1.1\r\nHost: a\r\n');
  assert.match(slow, /^HTTP\/1\.1 408 /);
  assert.equal((await request(port, '/still-fine')).status, 200);
});

test('response bodies are scrubbed while streaming; a large body passes whole', async () => {
  const w = serverWorkload({
    name: 'big',
    host: '127.0.0.1',
    port: plain.port,
    present: 'authorization-bearer',
  });
  const port = await listen(w);
  const r = await request(port, '/big?n=1000000');
  assert.equal(r.status, 200);
  assert.equal(r.body.length, 1_000_000);
  assert.equal(r.headers['content-length'], '1000000');
});

test('pipelined requests are answered in order, each decided; HTTP/1.0 is answered and closed', async () => {
  const w = serverWorkload({
    name: 'pipeline',
    host: '127.0.0.1',
    port: plain.port,
    present: 'authorization-bearer',
  });
  const port = await listen(w);
  const asked = connections.asked.length;
  const out = await raw(
    port,
    'GET /p/1 HTTP/1.1\r\nHost: a\r\n\r\n' +
      'POST /p/2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n' +
      'GET /p/3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
  );
  const urls = [...out.matchAll(/"url":"([^"]+)"/g)].map((m) => m[1]);
  assert.deepEqual(urls, ['/p/1', '/p/2', '/p/3']);
  assert.equal(out.match(/HTTP\/1\.1 200 /g)?.length, 3);
  assert.match(out, /"body":"two"/);
  assert.match(out, /\r\nconnection: close\r\n/);
  assert.deepEqual(
    connections.asked.slice(asked).map((a) => a.request?.path),
    ['/p/1', '/p/2', '/p/3'],
  );
  const old = await raw(port, 'GET /p/10 HTTP/1.0\r\n\r\n');
  assert.match(old, /^HTTP\/1\.1 200 [^]*\r\nconnection: close\r\n[^]*"url":"\/p\/10"/);
});

test('thousands of pipelined requests refused at once are answered in order, the connection kept', async () => {
  const w = serverWorkload({ name: 'many', host: '127.0.0.1', port: plain.port });
  const port = await listen(w);
  const n = 3000;
  const out = await raw(
    port,
    'GET x HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(n) +
      'GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
  );
  assert.equal(out.match(/HTTP\/1\.1 400 /g)?.length, n);
  assert.match(out, /HTTP\/1\.1 200 [^]*"url":"\/last"/);
});

test('Expect: 100-continue: 100 once allowed, then the body; a denial comes instead of 100, and closes', async () => {
  const w = serverWorkload({ name: 'expect', host: '127.0.0.1', port: plain.port });
  const port = await listen(w);
  const head =
    'PUT /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\nConnection: close\r\n\r\n';
  const s = net.connect(port, '127.0.0.1');
  let out = '';
  s.on('data', (d) => (out += d.toString()));
  const closed = new Promise((resolve) => s.on('close', resolve));
  s.write(head);
  await waitUntil(() => out.length > 0);
  assert.equal(out, 'HTTP/1.1 100 Continue\r\n\r\n');
  s.write('data');
  await closed;
  assert.match(out, /HTTP\/1\.1 200 [^]*"body":"data"/);
  decide = () => ({ deny: 'no', policy: 'p' });
  try {
    const denied = await raw(port, head.replace('Connection: close\r\n', ''));
    assert.match(denied, /^HTTP\/1\.1 403 [^]*\r\nconnection: close\r\n/);
    assert.doesNotMatch(denied, /100 Continue/);
  } finally {
    decide = () => ({ allow: { kind: 'token', token: TOKEN } });
  }
});

test('a chunked body found malformed on the way is 400, closed, and never completes upstream', async () => {
  const w = serverWorkload({ name: 'bad-chunk', host: '127.0.0.1', port: plain.port });
  const port = await listen(w);
  const n = plain.received.length;
  const s = net.connect(port, '127.0.0.1');
  let out = '';
  s.on('data', (d) => (out += d.toString()));
  const closed = new Promise((resolve) => s.on('close', resolve));
  s.write('POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
  // The request is on its way upstream by now; then the framing breaks.
  await waitUntil(() => plain.sockets() > 0 && connections.asked.at(-1)?.request?.path === '/c');
  s.write('5\r\nworld!!\r\n0\r\n\r\n');
  await closed;
  assert.match(
    out,
    /^HTTP\/1\.1 400 [^]*"error":"malformed HTTP request: chunk data not followed by CRLF"/,
  );
  assert.equal(plain.received.length, n);
  // Refused before its body: the rest of the body is dropped as it comes — until it breaks.
  decide = () => ({ deny: 'no' });
  try {
    const d = net.connect(port, '127.0.0.1');
    let answer = '';
    d.on('data', (b) => (answer += b.toString()));
    const gone = new Promise((resolve) => d.on('close', resolve));
    d.write('POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    await waitUntil(() => answer.includes('"reason":"no"'));
    d.write('5\r\nworld\r\n1x\r\n');
    await gone;
    assert.match(answer, /^HTTP\/1\.1 403 /);
    assert.equal(answer.match(/HTTP\/1\.1 /g)?.length, 1);
  } finally {
    decide = () => ({ allow: { kind: 'token', token: TOKEN } });
  }
  assert.equal(
    (await raw(port, 'CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n')).split('\r\n')[0],
    'HTTP/1.1 405 Method Not Allowed',
  );
});

/** Waits (bounded) for a condition. */
async function waitUntil(ok: () => boolean, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
