// The bounded POST and the cleaning of untrusted upstream text; the cloud formats on top of it are
// tested per provider against their stand-ins.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { oauthRefusal } from './oauth-answer.ts';
import { cleanText, jsonObject, postUpstream } from './upstream-http.ts';

const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';

let server: http.Server;
let url = '';

before(async () => {
  // Echoes the posted body inside an OAuth error, as a careless upstream might.
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () =>
      res
        .writeHead(400, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: 'invalid_grant', error_description: `bad token ${body}` })),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

describe('upstream text', () => {
  it('cleanText: JWTs redacted, non-printables replaced, bounded', () => {
    assert.equal(cleanText(`token ${JWT} end`, 100), 'token [token] end');
    assert.equal(cleanText('a\nb\u00e9c', 100), 'a?b?c');
    assert.equal(cleanText('x'.repeat(500), 10), 'x'.repeat(10));
    assert.equal(cleanText(42, 10), '');
  });

  it('an upstream echoing the subject token does not put it in the error', async () => {
    const res = await postUpstream({
      url,
      where: 'T',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `subject_token=${JWT}`,
      timeoutMs: 5000,
      fetch: globalThis.fetch,
    });
    assert.equal(res.status, 400);
    const err = oauthRefusal('T', res.status, res.text);
    assert.equal(
      err.message,
      'T refused: invalid_grant (bad token subject_token=[token]) (HTTP 400)',
    );
  });

  it('jsonObject: only a JSON object', () => {
    assert.deepEqual(jsonObject('{"a":1}'), { a: 1 });
    for (const t of ['[1]', 'null', '"s"', 'nope', '']) assert.equal(jsonObject(t), null);
  });
});
