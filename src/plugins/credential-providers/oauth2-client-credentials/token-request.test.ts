// Transport bounds of the token request (the OAuth behaviour itself is tested against
// oidc-provider in oidc-provider.test.ts): oversized and slow answers, non-OAuth errors.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { MAX_RESPONSE_BYTES, requestToken } from './token-request.ts';

let server: http.Server;
let url = '';
const bodies: string[] = [];

before(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      bodies.push(`${req.headers.authorization ?? ''}|${body}`);
      if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ access_token: 'x'.repeat(MAX_RESPONSE_BYTES) }));
      } else if (req.url === '/chunked-big') {
        res.writeHead(200, { 'content-type': 'application/json' });
        for (let i = 0; i < 20; i++) res.write('x'.repeat(8192));
        res.end();
      } else if (req.url === '/slow') {
        setTimeout(() => res.end('{}'), 5000).unref();
      } else if (req.url === '/html-500') {
        res.writeHead(500, { 'content-type': 'text/html' });
        res.end('<html>oops</html>');
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ access_token: 'tok', token_type: 'Bearer', expires_in: '120' }));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

const req = (path: string, timeoutMs = 10_000) =>
  requestToken({
    tokenUrl: `${url}${path}`,
    clientId: 'id with space',
    auth: { method: 'client_secret_basic', secret: 's3cr:et' },
    scope: 'a b',
    audience: '',
    resource: '',
    timeoutMs,
    now: Date.now(),
    fetch: globalThis.fetch,
  });

describe('requestToken', () => {
  it('sends the form and basic auth (form-encoded first, RFC 6749 §2.3.1)', async () => {
    assert.deepEqual(await req('/ok'), { accessToken: 'tok', expiresIn: 120 });
    const [auth, body] = (bodies.at(-1) ?? '').split('|');
    assert.equal(
      Buffer.from((auth ?? '').slice(6), 'base64').toString(),
      'id+with+space:s3cr%3Aet',
    );
    assert.equal(body, 'grant_type=client_credentials&scope=a+b');
  });

  it('refuses answers over the size bound, declared or streamed', async () => {
    for (const p of ['/big', '/chunked-big']) {
      await assert.rejects(req(p), {
        name: 'UnavailableError',
        message: `token endpoint ${url}${p}: response larger than ${MAX_RESPONSE_BYTES} bytes`,
      });
    }
  });

  it('gives up on a slow endpoint within the timeout', async () => {
    await assert.rejects(req('/slow', 300), {
      name: 'UnavailableError',
      message: `token endpoint ${url}/slow: cannot reach it: no answer within 300 ms`,
    });
  });

  it('a non-OAuth error answer is reported by its status', async () => {
    await assert.rejects(req('/html-500'), {
      name: 'UnavailableError',
      message: `token endpoint ${url}/html-500: HTTP 500`,
    });
  });
});
