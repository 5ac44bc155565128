// The client request reader on raw bytes: what it accepts (heads, bodies by length and chunked,
// pipelined requests held until the one before is done, any split of the bytes) and every
// framing it refuses, with the status and message the client gets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClientHead } from './client-head.ts';
import { ClientReader } from './client-reader.ts';
import { HttpAnswer } from './http-answer.ts';

interface Seen {
  heads: ClientHead[];
  bodies: string[];
  ends: number;
}

function reader(maxHeadBytes = 4096): { r: ClientReader; seen: Seen } {
  const seen: Seen = { heads: [], bodies: [], ends: 0 };
  const r = new ClientReader(
    {
      head: (h) => {
        seen.heads.push(h);
        seen.bodies.push('');
      },
      body: (b) => {
        seen.bodies[seen.bodies.length - 1] += b.toString('latin1');
      },
      end: () => {
        seen.ends++;
      },
    },
    maxHeadBytes,
  );
  return { r, seen };
}

/** Feeds `bytes` in pieces of `step` bytes (all at once by default). */
function feed(r: ClientReader, bytes: string, step = bytes.length): void {
  const b = Buffer.from(bytes, 'latin1');
  for (let i = 0; i < b.length; i += step) r.push(b.subarray(i, i + step));
}

/** The refusal `bytes` get (fed whole and byte by byte alike). */
function refusal(bytes: string, maxHeadBytes?: number): { status: number; error: string } {
  const results = [bytes.length, 1].map((step) => {
    const { r } = reader(maxHeadBytes);
    try {
      feed(r, bytes, step);
    } catch (e) {
      assert.ok(e instanceof HttpAnswer, String(e));
      return { status: e.status, error: String(e.body['error']) };
    }
    assert.fail(`accepted: ${JSON.stringify(bytes)}`);
  });
  assert.deepEqual(results[1], results[0], 'the same refusal whatever the split');
  return results[0]!;
}

const bad = (what: string) => ({ status: 400, error: `malformed HTTP request: ${what}` });

test('a GET: its head, no body, keep-alive', () => {
  const { r, seen } = reader();
  feed(r, 'GET /v1/items?a=1 HTTP/1.1\r\nHost: api\r\nX-Empty:\r\nAccept:  */* \t\r\n\r\n');
  assert.equal(seen.heads.length, 1);
  const h = seen.heads[0]!;
  assert.equal(h.method, 'GET');
  assert.equal(h.target, '/v1/items?a=1');
  assert.equal(h.minor, 1);
  assert.deepEqual(h.rawHeaders, ['Host', 'api', 'X-Empty', '', 'Accept', '*/*']);
  assert.deepEqual(h.framing, { kind: 'none' });
  assert.equal(h.keepAlive, true);
  assert.equal(h.expectContinue, false);
  assert.equal(seen.ends, 1);
});

test('bodies by Content-Length and chunked, whatever the split of the bytes', () => {
  const bytes =
    'POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world' +
    'POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n' +
    '5;name=value;q="a \\" b"\r\nhello\r\n1 ; x\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n';
  for (const step of [bytes.length, 7, 1]) {
    const { r, seen } = reader();
    feed(r, bytes, step);
    assert.equal(seen.heads.length, 1, 'the second request waits for next()');
    assert.equal(r.holding, true);
    r.next();
    assert.deepEqual(
      seen.heads.map((h) => h.framing),
      [{ kind: 'length', length: 11 }, { kind: 'chunked' }],
    );
    assert.deepEqual(seen.bodies, ['hello world', 'hello world']);
    assert.equal(seen.ends, 2);
    assert.equal(r.holding, false);
  }
});

test('pipelined requests are held until the one before is done; CONNECT leaves the rest', () => {
  const { r, seen } = reader();
  feed(r, '\r\nGET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP');
  assert.deepEqual(
    seen.heads.map((h) => h.target),
    ['/1'],
  );
  r.next();
  assert.deepEqual(
    seen.heads.map((h) => h.target),
    ['/1', '/2'],
  );
  r.next();
  assert.equal(r.idle, false, 'part of /3 arrived');
  feed(r, '/1.1\r\nHost: a\r\n\r\n');
  assert.deepEqual(
    seen.heads.map((h) => h.target),
    ['/1', '/2', '/3'],
  );
  const c = reader();
  feed(c.r, 'CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n\r\n\x16\x03\x01');
  assert.equal(c.seen.heads[0]!.target, 'api.example:443');
  assert.deepEqual([...c.r.takeHeld()], [0x16, 0x03, 0x01]);
});

test('HTTP/1.0, Connection: close and Expect: 100-continue', () => {
  const { r, seen } = reader();
  feed(r, 'GET / HTTP/1.0\r\n\r\n');
  r.next();
  feed(r, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n');
  r.next();
  feed(r, 'PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx');
  r.next();
  feed(r, 'GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n');
  assert.deepEqual(
    seen.heads.map((h) => [h.minor, h.keepAlive, h.expectContinue]),
    [
      [0, false, false],
      [1, false, false],
      [1, true, true],
      [1, true, false], // no body: nothing to wait for
    ],
  );
});

test('smuggling shapes: Content-Length and Transfer-Encoding', () => {
  const post = (headers: string, body = '') =>
    `POST / HTTP/1.1\r\nHost: a\r\n${headers}\r\n${body}`;
  assert.deepEqual(
    refusal(post('Content-Length: 5\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n')),
    bad('both Content-Length and Transfer-Encoding'),
  );
  assert.deepEqual(
    refusal(post('Transfer-Encoding: chunked\r\nContent-Length: 5\r\n', '0\r\n\r\n')),
    bad('both Content-Length and Transfer-Encoding'),
  );
  for (const cl of [
    'Content-Length: 5\r\nContent-Length: 5\r\n',
    'Content-Length: 5\r\ncontent-length: 6\r\n',
  ]) {
    assert.deepEqual(refusal(post(cl, 'hello')), bad('more than one Content-Length'));
  }
  for (const v of ['5, 5', '+5', '-1', '0x5', '5 5', '', '1234567890123456', '٥']) {
    assert.deepEqual(
      refusal(post(`Content-Length: ${v}\r\n`, 'hello')),
      bad('Content-Length is not one decimal number'),
      v,
    );
  }
  assert.deepEqual(
    refusal(post('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n')),
    bad('more than one Transfer-Encoding'),
  );
  for (const te of [
    'gzip, chunked',
    'chunked, identity',
    'identity',
    'chunked;q=1',
    'xchunked',
    '',
  ]) {
    assert.deepEqual(
      refusal(post(`Transfer-Encoding: ${te}\r\n`, '0\r\n\r\n')),
      bad('a Transfer-Encoding other than chunked alone'),
      te,
    );
  }
  assert.deepEqual(
    refusal('POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'),
    bad('Transfer-Encoding on HTTP/1.0'),
  );
});

test('header syntax: obs-fold, bare CR or LF, whitespace before the colon, names, values', () => {
  const get = (lines: string) => `GET / HTTP/1.1\r\nHost: a\r\n${lines}\r\n`;
  assert.deepEqual(
    refusal(get('X-A: 1\r\n  folded\r\n')),
    bad('header line 3 starts with whitespace (obs-fold)'),
  );
  assert.deepEqual(
    refusal(get('X-A : 1\r\n')),
    bad('whitespace before the colon in header line 2'),
  );
  assert.deepEqual(
    refusal(get('X-A\t: 1\r\n')),
    bad('whitespace before the colon in header line 2'),
  );
  for (const name of ['X@A', 'X(A)', '', 'X/A', 'Xé']) {
    assert.deepEqual(
      refusal(get(`${name}: 1\r\n`)),
      bad('header line 2: not a token name followed by ":"'),
      name,
    );
  }
  assert.deepEqual(
    refusal(get('NoColon\r\n')),
    bad('header line 2: not a token name followed by ":"'),
  );
  for (const c of ['\x00', '\x01', '\x7f', '\x1b']) {
    assert.deepEqual(
      refusal(get(`X-A: a${c}b\r\n`)),
      bad('header X-A: a control character in the value'),
      JSON.stringify(c),
    );
  }
  // A bare LF or CR: in a complete head, and in one that is not complete yet (refused at once,
  // not left to time out).
  assert.deepEqual(refusal(get('X-A: a\nX-B: b\r\n')), bad('a bare CR or LF in the head'));
  assert.deepEqual(refusal(get('X-A: a\rX-B: b\r\n')), bad('a bare CR or LF in the head'));
  assert.deepEqual(refusal('GET / HTTP/1.1\nHost: a\n\n'), bad('a bare CR or LF in the head'));
  assert.deepEqual(refusal('GET / HTTP/1.1\r\nHost: a\rX'), bad('a bare CR or LF in the head'));
  // obs-text in a value is allowed (and kept as latin1).
  const { r, seen } = reader();
  feed(r, get('X-A: caf\xe9\r\n'));
  assert.equal(seen.heads[0]!.rawHeaders[3], 'caf\xe9');
});

test('request line, Host, version and Expect', () => {
  const line = (l: string) => `${l}\r\nHost: a\r\n\r\n`;
  for (const l of [
    'GET  / HTTP/1.1',
    'GET / HTTP/1.1 ',
    'GET /a b HTTP/1.1',
    'GET /\x01 HTTP/1.1',
    'GET /caf\xe9 HTTP/1.1',
    'G@T / HTTP/1.1',
    'GET / http/1.1',
    'GET /',
    '',
  ]) {
    assert.deepEqual(
      refusal(line(l)),
      bad('request line (expected METHOD SP target SP HTTP/1.1)'),
      JSON.stringify(l),
    );
  }
  for (const v of ['HTTP/2.0', 'HTTP/1.2', 'HTTP/0.9', 'HTTP/3']) {
    assert.deepEqual(refusal(line(`GET / ${v}`)), {
      status: 505,
      error: 'HTTP version not supported: HTTP/1.1 or HTTP/1.0',
    });
  }
  assert.deepEqual(refusal('GET / HTTP/1.1\r\n\r\n'), bad('no Host header'));
  assert.deepEqual(
    refusal('GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n'),
    bad('more than one Host header'),
  );
  assert.deepEqual(
    refusal('GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n'),
    bad('more than one Host header'),
  );
  assert.deepEqual(
    refusal('POST / HTTP/1.1\r\nHost: a\r\nExpect: later\r\nContent-Length: 1\r\n\r\nx'),
    {
      status: 417,
      error: 'only Expect: 100-continue is supported',
    },
  );
});

test('bounds: the head (431 complete or not), header lines (431)', () => {
  const big = `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(300)}\r\n\r\n`;
  const tooLarge = { status: 431, error: 'request head larger than 256 bytes' };
  assert.deepEqual(refusal(big, 256), tooLarge);
  assert.deepEqual(refusal(big.slice(0, 280), 256), tooLarge, 'not complete, already too large');
  const many = `GET / HTTP/1.1\r\nHost: a\r\n${'X: 1\r\n'.repeat(256)}\r\n`;
  assert.deepEqual(refusal(many, 1 << 20), { status: 431, error: 'more than 256 header lines' });
});

test('chunked framing: size lines, chunk ends, trailers', () => {
  const chunked = (body: string) =>
    `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${body}`;
  for (const size of [
    'zz',
    '1 ',
    ' 1',
    '-1',
    '0x1',
    '12345678901234',
    '1;',
    '1;a=',
    '1;a b',
    '1;a="x',
  ]) {
    assert.deepEqual(refusal(chunked(`${size}\r\nx\r\n0\r\n\r\n`)), bad('chunk-size line'), size);
  }
  assert.deepEqual(
    refusal(chunked(`1;${'a'.repeat(1100)}\r\nx\r\n0\r\n\r\n`)),
    bad('chunk-size line longer than 1024 bytes'),
  );
  assert.deepEqual(refusal(chunked('1\nx\n0\n\n')), bad('a bare CR or LF in a chunk-size line'));
  assert.deepEqual(refusal(chunked('1\r\nxy0\r\n\r\n')), bad('chunk data not followed by CRLF'));
  assert.deepEqual(refusal(chunked('1\r\nx\n0\r\n\r\n')), bad('chunk data not followed by CRLF'));
  assert.deepEqual(
    refusal(chunked('1\r\nx\r\n0\r\nX-T : 1\r\n\r\n')),
    bad('trailer line 1: not a token name followed by ":"'),
  );
  assert.deepEqual(
    refusal(chunked('1\r\nx\r\n0\r\nX-T: 1\nGET /admin HTTP/1.1\r\n\r\n')),
    bad('a bare CR or LF in the trailers'),
  );
  assert.deepEqual(
    refusal(chunked(`0\r\nX-T: ${'a'.repeat(17 * 1024)}`)),
    bad('trailers larger than 16384 bytes'),
  );
});
