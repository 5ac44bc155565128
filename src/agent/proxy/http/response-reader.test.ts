import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  MAX_RESPONSE_HEAD_BYTES,
  UpstreamProtocolError,
  type ResponseHead,
} from './response-head.ts';
import { ResponseReader } from './response-reader.ts';

interface Read {
  head: ResponseHead | null;
  body: string;
  ended: boolean;
  reader: ResponseReader;
}

/** Feeds `pieces` to a fresh reader; `eof` closes the connection after them. */
function read(
  pieces: Array<string | Buffer>,
  o: { headRequest?: boolean; eof?: boolean } = {},
): Read {
  const r: Read = { head: null, body: '', ended: false, reader: null as unknown as ResponseReader };
  r.reader = new ResponseReader(
    {
      head: (h) => (r.head = h),
      data: (b) => (r.body += b.toString('latin1')),
      end: () => (r.ended = true),
    },
    o.headRequest ?? false,
  );
  for (const p of pieces) r.reader.push(Buffer.isBuffer(p) ? p : Buffer.from(p, 'latin1'));
  if (o.eof) r.reader.eof();
  return r;
}

/** Every way of cutting `text` in two. */
function splits(text: string): Array<[string, string]> {
  return Array.from({ length: text.length + 1 }, (_, i) => [text.slice(0, i), text.slice(i)]);
}

const refused = (re: RegExp) => (e: unknown) =>
  e instanceof UpstreamProtocolError && re.test(e.message);

test('a Content-Length response, cut anywhere, reads the same; the connection stays reusable', () => {
  const text = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello';
  for (const [a, b] of splits(text)) {
    const r = read([a, b]);
    assert.equal(r.head?.status, 200);
    assert.deepEqual(r.head?.rawHeaders, ['Content-Type', 'text/plain', 'Content-Length', '5']);
    assert.equal(r.body, 'hello');
    assert.ok(r.ended && r.reader.done && !r.reader.extra);
    assert.equal(r.head?.keepAlive, true);
  }
});

test('chunked bodies are decoded, cut anywhere; extensions and trailers are dropped', () => {
  const text =
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
    '5\r\nhello\r\n1;ext=1\r\n \r\nA \r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n';
  for (const [a, b] of splits(text)) {
    const r = read([a, b]);
    assert.equal(r.body, 'hello 0123456789', `cut at ${a.length}`);
    assert.ok(r.ended && !r.reader.extra);
  }
  assert.equal(
    read(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n']).ended,
    true,
  );
});

test('malformed chunked framing is refused', () => {
  const head = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
  assert.throws(() => read([head + 'zz\r\n']), refused(/malformed chunked body: chunk-size line$/));
  assert.throws(() => read([head + '5\r\nhelloXY']), refused(/not followed by CRLF/));
  assert.throws(() => read([head + '-1\r\n']), refused(/malformed chunked body: chunk-size line$/));
  assert.throws(
    () => read([head + 'f'.repeat(14) + '\r\n']),
    refused(/malformed chunked body: chunk-size line$/),
  );
  assert.throws(() => read([head + '1;' + 'x'.repeat(2000)]), refused(/chunk-size line longer/));
  assert.throws(() => read([head + '0\r\nX: ' + 'y'.repeat(20_000)]), refused(/trailers larger/));
});

test('malformed heads are refused', () => {
  const bad: Array<[string, RegExp]> = [
    ['HTTP/1.1 20 OK', /malformed status line/],
    ['HTTP/2 200 OK', /malformed status line/],
    ['ICY 200 OK', /malformed status line/],
    ['HTTP/1.1 200 OK\r\nBad Name: x', /malformed header line/],
    ['HTTP/1.1 200 OK\r\nName : x', /malformed header line/],
    ['HTTP/1.1 200 OK\r\nNoColon', /malformed header line/],
    ['HTTP/1.1 200 OK\r\nA: b\r\n folded', /malformed header line/],
    ['HTTP/1.1 200 OK\r\nA: b\nSmuggled: c', /control character/],
    ['HTTP/1.1 200 OK\r\nA: b\0c', /control character/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked', /both Content-Length/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6', /differing Content-Length/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 5, 6', /differing Content-Length/],
    ['HTTP/1.1 200 OK\r\nContent-Length: -1', /invalid or differing Content-Length/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 0x10', /invalid or differing Content-Length/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked', /other than chunked alone/],
    [
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked',
      /other than chunked alone/,
    ],
    ['HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket', /101 Switching Protocols/],
  ];
  for (const [head, re] of bad) assert.throws(() => read([`${head}\r\n\r\n`]), refused(re), head);
  // Nothing of the response is quoted: an echoing server could put the credential there.
  assert.throws(
    () => read(['HTTP/1.1 200 OK\r\nauthorization : Bearer tok-secret\r\n\r\n']),
    (e: Error) => e.message === 'malformed header line 1',
  );
  // Agreeing duplicates are one length.
  const same = read(['HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok']);
  assert.equal(same.body, 'ok');
});

test('an oversized head is refused, also when it arrives in pieces', () => {
  const big = `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(MAX_RESPONSE_HEAD_BYTES)}\r\n\r\n`;
  assert.throws(() => read([big]), refused(/response head larger than 32768 bytes/));
  const pieces = big.match(/[^]{1,1000}/g)!;
  assert.throws(() => read(pieces), refused(/response head larger/));
  const many = `HTTP/1.1 200 OK\r\n${'A: b\r\n'.repeat(300)}\r\n`;
  assert.throws(() => read([many]), refused(/more than 256 header lines/));
});

test('1xx interim responses are skipped; the final one is read', () => {
  const r = read([
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n',
    'HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok',
  ]);
  assert.equal(r.head?.status, 201);
  assert.equal(r.body, 'ok');
  assert.throws(
    () => read(['HTTP/1.1 100 Continue\r\n\r\n'.repeat(17)]),
    refused(/more than 16 interim responses/),
  );
});

test('HEAD, 204 and 304 have no body whatever the head says; what follows is extra', () => {
  const h = read(['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n'], { headRequest: true });
  assert.ok(h.ended && h.body === '' && h.head?.keepAlive);
  for (const status of ['204 No Content', '304 Not Modified']) {
    const r = read([`HTTP/1.1 ${status}\r\nContent-Length: 3\r\n\r\n`]);
    assert.ok(r.ended && r.body === '', status);
    assert.equal(r.reader.extra, false);
  }
  const extra = read(['HTTP/1.1 204 No Content\r\n\r\nabc']);
  assert.ok(extra.ended && extra.reader.extra, 'bytes after the response');
});

test('Connection: close, HTTP/1.0 and close-delimited bodies end the connection', () => {
  const c = read([
    'HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1\r\n\r\nx',
  ]);
  assert.equal(c.head?.keepAlive, false);
  assert.equal(read(['HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx']).head?.keepAlive, false);
  const open = read(['HTTP/1.1 200 OK\r\n\r\nuntil ', 'the end'], { eof: true });
  assert.equal(open.head?.framing.kind, 'close');
  assert.equal(open.head?.keepAlive, false);
  assert.equal(open.body, 'until the end');
  assert.ok(open.ended);
});

test('a connection closing before or in the middle of a response is an error', () => {
  assert.throws(() => read([], { eof: true }), refused(/closed before a response/));
  assert.throws(() => read(['HTTP/1.1 200'], { eof: true }), refused(/closed before a response/));
  assert.throws(
    () => read(['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'], { eof: true }),
    refused(/in the middle of the response body/),
  );
  assert.throws(
    () => read(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab'], { eof: true }),
    refused(/in the middle of the response body/),
  );
  assert.equal(read([], {}).reader.started, false);
  assert.equal(read(['H']).reader.started, true);
});
