// The cloud metadata listener over real loopback TCP attestation of this process: routing by
// prefix, bounds (target, body), the pinned process key, attestation on demand, and a thrown
// endpoint error becoming a 500 with a correlation id that is logged, never its message.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { testEntry, UID, world } from '../credentials/testing/fixtures.ts';
import type { CloudContext, CloudEndpoint } from './cloud-endpoint.ts';
import {
  MAX_BODY_BYTES,
  MAX_URL_BYTES,
  startCloudListener,
  type CloudListener,
} from './cloud-listener.ts';

function request(
  l: CloudListener,
  method: string,
  target: string,
  body = '',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: l.host, port: l.port, method, path: target, agent: false });
    req.once('error', reject);
    req.once('response', (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.end(body);
  });
}

describe('cloud metadata listener', () => {
  const logged: { fields: Record<string, unknown>; msg: string }[] = [];
  const log = (fields: Record<string, unknown>, msg: string) => void logged.push({ fields, msg });
  const echo: CloudEndpoint = {
    name: 'echo',
    prefixes: ['/echo/'],
    async handle(req) {
      if (req.path === '/echo/throw') throw new Error('secret detail');
      const body =
        req.path === '/echo/caller'
          ? JSON.stringify({ uid: (await req.caller()).process.uid })
          : req.path === '/echo/process'
            ? await req.processKey()
            : JSON.stringify({
                method: req.method,
                path: req.path,
                q: req.query.get('q'),
                body: req.body,
              });
      return { status: 200, body };
    },
  };
  let l: CloudListener;
  before(async () => {
    const w = world([testEntry('e-web', 'spiffe://example.org/web', [`unix:uid:${UID}`])]);
    const context: CloudContext = {
      credentials: w.credentials,
      identities: { fetchJwtSvids: () => Promise.reject(new Error('not used by this test')) },
      log: { info: log, warn: log, debug: log },
    };
    l = await startCloudListener({
      host: '127.0.0.1',
      port: 0,
      attestation: w.attestation,
      endpoints: [echo],
      context,
    });
  });
  after(() => l.close());

  it('refuses a non-loopback address', async () => {
    await assert.rejects(
      startCloudListener({
        host: '0.0.0.0',
        port: 0,
        attestation: undefined as never,
        endpoints: [],
        context: undefined as never,
      }),
      /not a loopback address/,
    );
  });

  it('routes by prefix with the decoded path, query and body', async () => {
    const r = await request(l, 'PUT', '/echo/a%20b?q=1', 'hello');
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), {
      method: 'PUT',
      path: '/echo/a b',
      q: '1',
      body: 'hello',
    });
    assert.equal((await request(l, 'GET', '/other/')).status, 404);
    assert.equal((await request(l, 'GET', '/echo/%zz')).status, 400);
  });

  it('bounds the request target and the body', async () => {
    assert.equal((await request(l, 'GET', `/echo/${'a'.repeat(MAX_URL_BYTES)}`)).status, 414);
    assert.equal((await request(l, 'POST', '/echo/x', 'b'.repeat(MAX_BODY_BYTES + 1))).status, 413);
  });

  it('attests the caller on demand and names the pinned process', async () => {
    assert.deepEqual(JSON.parse((await request(l, 'GET', '/echo/caller')).body), { uid: UID });
    const key = (await request(l, 'GET', '/echo/process')).body;
    assert.match(key, new RegExp(`^${process.pid}:\\d+$`));
  });

  it('an endpoint that throws: 500 with a correlation id, the detail only in the log', async () => {
    const r = await request(l, 'GET', '/echo/throw');
    assert.equal(r.status, 500);
    assert.doesNotMatch(r.body, /secret detail/);
    const id = /correlation id ([\w-]+)/.exec(r.body)?.[1];
    assert.ok(id);
    const line = logged.find((x) => x.fields['correlationId'] === id);
    assert.match(String(line?.fields['err']), /secret detail/);
  });
});
