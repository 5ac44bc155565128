import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HttpAnswer } from './http-answer.ts';
import { injectionFor, withQueryParam } from './presenters.ts';
import { checkTarget, underPrefix, upstreamHeaders, upstreamTarget } from './request-head.ts';
import { Scrubber } from './scrub.ts';

const token = (t: string) => ({ kind: 'token' as const, token: t });

test('each presentation puts the credential where it says', () => {
  assert.deepEqual(injectionFor('authorization-bearer', token('tok')).header, {
    name: 'authorization',
    value: 'Bearer tok',
  });
  assert.deepEqual(injectionFor('header:X-Api-Key', token('k 1')).header, {
    name: 'x-api-key',
    value: 'k 1',
  });
  const basic = injectionFor('basic', { kind: 'password', username: 'app', password: 'pw' });
  assert.deepEqual(basic.header, { name: 'authorization', value: 'Basic YXBwOnB3' });
  assert.deepEqual(basic.secrets, ['YXBwOnB3', 'pw']);
  const q = injectionFor('query:api_key', token('a/b'));
  assert.deepEqual(q.query, { name: 'api_key', value: 'a/b' });
  assert.deepEqual(q.secrets, ['a/b', 'a%2Fb']);
});

test('a presentation that cannot carry the credential is 502, naming why', () => {
  const cases: Array<[string, Parameters<typeof injectionFor>[1], RegExp]> = [
    ['basic', token('t'), /credential \(token\) cannot be presented as basic/],
    ['authorization-bearer', { kind: 'password', username: '', password: 'p' }, /password/],
    ['header:Host', token('t'), /not an HTTP presentation/],
    ['header:Content-Length', token('t'), /not an HTTP presentation/],
    ['query:a&b', token('t'), /not an HTTP presentation/],
    ['postgres-password', token('t'), /not an HTTP presentation/],
    ['aws-sigv4', token('t'), /aws-sigv4 re-signs the request: nothing to inject/],
    ['header:X', token('a\r\nb'), /cannot go in an HTTP header/],
  ];
  for (const [present, value, message] of cases) {
    assert.throws(
      () => injectionFor(present, value),
      (e: unknown) => e instanceof HttpAnswer && e.status === 502 && message.test(e.message),
      present,
    );
  }
});

test('the query parameter replaces every client value of that name, encoded or not', () => {
  assert.equal(withQueryParam('/p', 'key', 's'), '/p?key=s');
  assert.equal(
    withQueryParam('/p?a=1&key=mine&%6Bey=x&b=2&key', 'key', 's&t'),
    '/p?a=1&b=2&key=s%26t',
  );
  const inj = injectionFor('query:key', token('s'));
  assert.equal(upstreamTarget('/x?key=client', inj), '/x?key=s');
});

test('upstream headers: hop-by-hop and Connection-named dropped, Host set, credential replaced', () => {
  const inj = injectionFor('authorization-bearer', token('tok'));
  const raw = [
    'Host',
    '127.0.0.1:9',
    'Authorization',
    'Bearer client',
    'authorization',
    'Basic x',
    'Connection',
    'keep-alive, X-Secret-Hop',
    'X-Secret-Hop',
    '1',
    'Proxy-Authorization',
    'p',
    'Accept-Encoding',
    'gzip',
    'X-Other',
    'a',
    'x-other',
    'b',
    'Transfer-Encoding',
    'chunked',
  ];
  assert.deepEqual(upstreamHeaders(raw, 'api.example', inj), {
    'x-other': ['a', 'b'],
    host: 'api.example',
    'transfer-encoding': 'chunked',
    authorization: 'Bearer tok',
    'accept-encoding': 'identity',
  });
  // Nothing injected: the client's own headers pass (hop-by-hop still dropped).
  assert.deepEqual(upstreamHeaders(['Authorization', 'mine', 'TE', 'x'], 'h', null), {
    authorization: 'mine',
    host: 'h',
  });
});

test('path prefixes match whole segments; dot segments are refused', () => {
  assert.ok(underPrefix('/v2', '/v2'));
  assert.ok(underPrefix('/v2/x', '/v2'));
  assert.ok(!underPrefix('/v2admin', '/v2'));
  assert.ok(underPrefix('/v2/', '/v2/'));
  assert.ok(!underPrefix('/v2', '/v2/'));
  assert.ok(underPrefix('/anything', ''));
  for (const bad of ['/v2/../admin', '/v2/%2e%2e/admin', '/v2/.%2E\\admin', '/v2/./x']) {
    assert.throws(() => checkTarget(bad), /must not contain "." or ".." segments/, bad);
  }
  assert.throws(() => checkTarget('/%zz'), /malformed percent-encoding/);
  assert.throws(() => checkTarget('*'), /must be a path/);
  assert.deepEqual(checkTarget('/a/b?q=1'), { path: '/a/b', query: '?q=1' });
});

test('the scrubber masks every secret form, also split across chunks, keeping lengths', () => {
  const s = new Scrubber(['SECRET-TOKEN', 'SECRET']);
  assert.equal(s.text('Bearer SECRET-TOKEN; x=SECRET'), 'Bearer ************; x=******');
  const chunks = ['{"auth":"Bearer SEC', 'RET-TO', 'KEN","n":1}', ' SECRET'];
  const body = s.body();
  const out =
    chunks.map((c) => body.push(Buffer.from(c)).toString()).join('') + body.end().toString();
  assert.equal(out, '{"auth":"Bearer ************","n":1} ******');
  assert.equal(out.length, chunks.join('').length);
  assert.ok(new Scrubber([]).empty);
});
