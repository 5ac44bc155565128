// The upstream side of the HTTP handler against a scripted raw TCP server: what a server workload
// may answer (chunked, interim 1xx, bodiless, Connection: close, malformed, oversized, cut off,
// silent) reaches real clients correctly or as a clean error, and keep-alive reuse holds.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { createHttpHandler } from './http-handler.ts';
import { startEchoServer, type Echo, type EchoServer } from './testing/echo-server.ts';
import {
  serverWorkload,
  standInListener,
  StandInConnections,
} from './testing/stand-in-connections.ts';

const TOKEN = 'tok-5b0c9e2a71';
const MASK = '*'.repeat(TOKEN.length);

/** A server answering each request head with what `script` writes for its path. */
interface Scripted {
  readonly port: number;
  /** Connections accepted so far. */
  connections(): number;
  /** Request lines received, in order. */
  readonly requests: string[];
  close(): Promise<void>;
}

type Script = (path: string, socket: net.Socket, nth: number) => void;

async function scriptedServer(script: Script): Promise<Scripted> {
  let accepted = 0;
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let pending = '';
    let nth = 0;
    socket.on('data', (d) => {
      pending += d.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        const head = pending.slice(0, end);
        pending = pending.slice(end + 4); // the requests here carry no body
        const line = head.split('\r\n')[0]!;
        requests.push(line);
        script(line.split(' ')[1]!, socket, ++nth);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => accepted,
    requests,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

const ok = (body: string, extra = '') =>
  `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

const script: Script = (path, socket, nth) => {
  const route = path.split('?')[0];
  if (route === '/chunked') {
    // The credential split across chunks and across writes.
    const [a, b] = [TOKEN.slice(0, 5), TOKEN.slice(5)];
    socket.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nsaw: ${a[0]}\r\n`);
    socket.write(`${(a.length - 1).toString(16)}\r\n${a.slice(1)}\r\n`);
    socket.write(`${b.length.toString(16)}\r\n${b}\r\n0\r\nX-T: 1\r\n\r\n`);
  } else if (route === '/interim') {
    socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n');
    socket.write(ok('final'));
  } else if (route === '/no-content') {
    socket.write('HTTP/1.1 204 No Content\r\n\r\n');
  } else if (route === '/not-modified') {
    socket.write('HTTP/1.1 304 Not Modified\r\nETag: "e"\r\nContent-Length: 99\r\n\r\n');
  } else if (route === '/head') {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n');
  } else if (route === '/close') {
    socket.end(ok('bye', 'Connection: close\r\n'));
  } else if (route === '/until-close') {
    socket.end('HTTP/1.1 200 OK\r\n\r\nall of it');
  } else if (route === '/both') {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n');
  } else if (route === '/oversized') {
    socket.write(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`);
  } else if (route === '/cut') {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..');
    setTimeout(() => socket.destroy(), 20);
  } else if (route === '/gzip') {
    socket.write(ok('\x1f\x8b', 'Content-Encoding: gzip\r\n'));
  } else if (route === '/drop-second') {
    // Answers the first request of a connection; drops the connection on the second, unanswered,
    // as a server whose keep-alive timeout struck just then.
    if (nth === 1) socket.write(ok('first'));
    else socket.destroy();
  } else if (route === '/silent') {
    // no answer
  } else {
    socket.write(ok(`at ${path}`));
  }
};

let upstream: Scripted;
let echo: EchoServer;
const handler = createHttpHandler({ upstreamIdleMs: 400 });
const listeners: Array<{ close(): Promise<void> }> = [];
const connections = new StandInConnections([], () => ({ allow: { kind: 'token', token: TOKEN } }));

async function listen(port: number): Promise<number> {
  const w = serverWorkload({
    name: `w${port}`,
    host: '127.0.0.1',
    port,
    present: 'authorization-bearer',
  });
  const l = await standInListener(connections, w, (s, conn) => handler.handle(s, conn));
  listeners.push(l);
  return l.port;
}

before(async () => {
  upstream = await scriptedServer(script);
  echo = await startEchoServer(false);
});

after(async () => {
  for (const l of listeners) await l.close();
  await upstream.close();
  await echo.close();
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(port: number, path: string, agent: http.Agent, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString('latin1')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

test('chunked, interim and bodiless answers pass correctly, all on one upstream connection', async () => {
  const port = await listen(upstream.port);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const before = upstream.connections();
  try {
    const chunked = await request(port, '/chunked', agent);
    assert.equal(chunked.status, 200);
    assert.equal(chunked.body, `saw: ${MASK}`);
    const interim = await request(port, '/interim', agent);
    assert.deepEqual([interim.status, interim.body], [200, 'final']);
    const head = await request(port, '/head', agent, 'HEAD');
    assert.deepEqual([head.status, head.headers['content-length'], head.body], [200, '10', '']);
    const none = await request(port, '/no-content', agent);
    assert.deepEqual([none.status, none.body], [204, '']);
    const same = await request(port, '/not-modified', agent);
    assert.deepEqual([same.status, same.headers.etag, same.body], [304, '"e"', '']);
    const last = await request(port, '/after', agent);
    assert.deepEqual([last.status, last.body], [200, 'at /after']);
  } finally {
    agent.destroy();
  }
  assert.equal(upstream.connections() - before, 1, 'every answer was framed exactly');
});

test('Connection: close and a close-delimited body end the upstream connection, not the client', async () => {
  const port = await listen(upstream.port);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const before = upstream.connections();
  try {
    assert.equal((await request(port, '/close', agent)).body, 'bye');
    assert.equal((await request(port, '/until-close', agent)).body, 'all of it');
    assert.equal((await request(port, '/again', agent)).body, 'at /again');
  } finally {
    agent.destroy();
  }
  assert.equal(upstream.connections() - before, 3);
});

test('malformed, oversized and encoded answers are 502 naming why; the client connection goes on', async () => {
  const port = await listen(upstream.port);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const cases: Array<[string, RegExp]> = [
      ['/both', /127\.0\.0\.1:\d+: both Content-Length and Transfer-Encoding/],
      ['/oversized', /response head larger than 32768 bytes/],
      ['/gzip', /Content-Encoding gzip though identity was asked/],
    ];
    for (const [path, re] of cases) {
      const r = await request(port, path, agent);
      assert.equal(r.status, 502, path);
      assert.match(JSON.parse(r.body).error, re);
    }
    assert.equal((await request(port, '/fine', agent)).status, 200);
  } finally {
    agent.destroy();
  }
});

test('an upstream cut mid-body cuts the client response; a silent one is 504', async () => {
  const port = await listen(upstream.port);
  await assert.rejects(
    request(port, '/cut', new http.Agent()),
    /aborted|socket hang up|ECONNRESET/,
  );
  const silent = await request(port, '/silent', new http.Agent());
  assert.equal(silent.status, 504);
  assert.match(JSON.parse(silent.body).error, /did not answer in time/);
  assert.equal((await request(port, '/fine', new http.Agent())).status, 200);
});

test('a reused connection dropped before any answer: a GET is sent once more on a new one', async () => {
  const port = await listen(upstream.port);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const before = upstream.connections();
  try {
    assert.equal((await request(port, '/drop-second', agent)).body, 'first');
    assert.equal((await request(port, '/drop-second', agent)).body, 'first');
  } finally {
    agent.destroy();
  }
  assert.equal(upstream.connections() - before, 2);
});

test('request bodies: chunked from HTTP/1.1 and unannounced from HTTP/2 reach the server whole', async () => {
  const port = await listen(echo.port);
  const chunked = await new Promise<Echo>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/up', method: 'POST' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(JSON.parse(body) as Echo));
    });
    req.on('error', reject);
    req.write('one,');
    setTimeout(() => req.end('two'), 20);
  });
  assert.equal(chunked.body, 'one,two');
  assert.equal(chunked.headers['transfer-encoding'], 'chunked');
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    const got = await new Promise<Echo>((resolve, reject) => {
      const s = session.request({ ':path': '/h2', ':method': 'PUT' });
      let body = '';
      s.on('data', (d: Buffer) => (body += d.toString()));
      s.on('end', () => resolve(JSON.parse(body) as Echo));
      s.on('error', reject);
      s.write('h2 ');
      setTimeout(() => s.end('body'), 20);
    });
    assert.equal(got.body, 'h2 body');
    assert.equal(got.method, 'PUT');
  } finally {
    session.close();
  }
});
