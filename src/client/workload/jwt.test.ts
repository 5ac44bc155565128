import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Code } from '@connectrpc/connect';
import { InvalidArgumentError, PermissionDeniedError } from '../../core/errors.ts';
import { authorizeMemberOf } from './authorizer.ts';
import {
  FakeWorkloadApi,
  jwksOf,
  makeAuthority,
  mintJwt,
  type TestAuthority,
} from './testing/fake-workload-api.ts';
import { jwtSvidMiddleware, spiffeOf, type SpiffeRequest } from './http-middleware.ts';
import { JwtSource } from './jwt-source.ts';
import { JwtSvidVerifier, staticJwtBundles } from './jwt-verifier.ts';

let api: FakeWorkloadApi;
let td: TestAuthority;
let partner: TestAuthority;
let stranger: TestAuthority;
const WEB = 'spiffe://example.org/web';
const fast = { initialMs: 5, maxMs: 40 };

before(async () => {
  td = await makeAuthority('example.org');
  partner = await makeAuthority('partner.test');
  stranger = await makeAuthority('stranger.test');
  api = new FakeWorkloadApi();
  await api.start();
  api.jwtBundles = jwksOf(td, partner);
  api.mintJwt = async (aud, id) => [
    { spiffeId: id || WEB, svid: await mintJwt(td, id || WEB, aud) },
  ];
});
after(() => api.dispose());

test('JwtSource: bundles from the stream, JWT-SVIDs cached until half their lifetime', async () => {
  let now = Date.now();
  const src = await JwtSource.open({
    address: api.uri,
    backoff: fast,
    timeoutMs: 5000,
    clock: () => now,
  });
  try {
    assert.ok(src.getJwtBundleForTrustDomain('example.org')?.get(td.kid));
    assert.ok(src.getJwtBundleForTrustDomain('spiffe://partner.test')?.get(partner.kid));
    const calls = () => api.calls.filter((c) => c === 'jwt').length;
    const before = calls();
    const [a, b] = await Promise.all([
      src.fetchJwtSvid({ audience: 'svc' }),
      src.fetchJwtSvid({ audience: ['svc'] }),
    ]);
    assert.equal(a.token, b.token);
    assert.equal(calls(), before + 1, 'concurrent fetches share one call');
    now += 60_000; // 1 of 5 minutes: still fresh
    assert.equal((await src.fetchJwtSvid({ audience: 'svc' })).token, a.token);
    assert.equal(calls(), before + 1);
    now += 100_000; // past half-life (150 s)
    await src.fetchJwtSvid({ audience: 'svc' });
    assert.equal(calls(), before + 2);
    await src.fetchJwtSvid({ audience: 'other' });
    assert.equal(calls(), before + 3, 'another audience is another cache entry');
  } finally {
    await src.close();
  }
  await assert.rejects(src.fetchJwtSvid({ audience: 'svc' }), /closed/);
});

test('JwtSource follows bundle updates and reconnects after Unavailable', async () => {
  const src = await JwtSource.open({ address: api.uri, backoff: fast, timeoutMs: 5000 });
  try {
    const updated = new Promise<void>((r) => {
      const off = src.onUpdate((b) => b.has('stranger.test') && (off(), r()));
    });
    api.failures.set('jwtBundles', { code: Code.Unavailable, count: 2 });
    api.jwtBundles = jwksOf(td, partner, stranger);
    api.dropStreams();
    await updated;
    assert.ok(src.getJwtBundleForTrustDomain('stranger.test')?.get(stranger.kid));
  } finally {
    api.jwtBundles = jwksOf(td, partner);
    await src.close();
  }
});

test('verifier (JwtSource): accepts a valid token; rejects wrong aud, expired, unknown kid, other TD', async () => {
  const src = await JwtSource.open({ address: api.uri, backoff: fast, timeoutMs: 5000 });
  const v = new JwtSvidVerifier({ bundles: src, audience: 'svc-b' });
  try {
    const ok = await v.verify(await mintJwt(td, WEB, ['svc-b', 'x']));
    assert.equal(ok.spiffeId, WEB);
    assert.deepEqual(ok.claims.aud, ['svc-b', 'x']);
    const fed = await v.verify(await mintJwt(partner, 'spiffe://partner.test/api', ['svc-b']));
    assert.equal(fed.id.trustDomain.name, 'partner.test');
    const bad: Array<[Promise<string>, RegExp]> = [
      [mintJwt(td, WEB, ['svc-c']), /audience mismatch/],
      [mintJwt(td, WEB, ['svc-b'], { now: Date.now() - 3_600_000 }), /expired/],
      [mintJwt(td, WEB, ['svc-b'], { kid: 'nope' }), /unknown kid "nope"/],
      [mintJwt(stranger, 'spiffe://stranger.test/x', ['svc-b']), /unknown kid/],
      // Signed by partner's key but claiming example.org: the key of example.org is looked up.
      [mintJwt(partner, WEB, ['svc-b']), /unknown kid/],
      [Promise.resolve('not.a.jwt'), /invalid JWT-SVID/],
    ];
    for (const [token, re] of bad) {
      await assert.rejects(
        v.verify(await token),
        (e: unknown) => e instanceof InvalidArgumentError && re.test(e.message),
      );
    }
  } finally {
    await src.close();
  }
});

test('verifier over a static JWKS set, with an authorizer', async () => {
  const jwks = jwksOf(td);
  const bundles = staticJwtBundles({ 'spiffe://example.org': jwks['spiffe://example.org']! });
  const v = new JwtSvidVerifier({
    bundles,
    audience: 'svc',
    authorizer: authorizeMemberOf('example.org'),
  });
  assert.equal((await v.verify(await mintJwt(td, WEB, ['svc']))).spiffeId, WEB);
  const other = new JwtSvidVerifier({
    bundles,
    audience: 'svc',
    authorizer: authorizeMemberOf('partner.test'),
  });
  await assert.rejects(other.verify(await mintJwt(td, WEB, ['svc'])), PermissionDeniedError);
  const now = Date.now() + 3_600_000;
  const late = new JwtSvidVerifier({ bundles, audience: 'svc', clock: () => now });
  await assert.rejects(late.verify(await mintJwt(td, WEB, ['svc'])), /expired/);
});

test('middleware: attaches the caller, 401 with a Bearer challenge otherwise, 403 when refused', async () => {
  const bundles = staticJwtBundles({ 'example.org': jwksOf(td)['spiffe://example.org']! });
  const verifier = new JwtSvidVerifier({
    bundles,
    audience: 'api',
    authorizer: authorizeMemberOf('example.org'),
  });
  const mw = jwtSvidMiddleware(verifier);
  const server = http.createServer((req, res) => {
    mw(req, res, (err) => {
      if (err) return void res.writeHead(500).end();
      const r = req as SpiffeRequest;
      assert.equal(spiffeOf(req), r.spiffe);
      res.end(`hello ${r.spiffe?.spiffeId}`);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const call = async (auth?: string) => {
    const res = await fetch(`http://127.0.0.1:${port}/`, {
      headers: auth ? { authorization: auth } : {},
    });
    return {
      status: res.status,
      challenge: res.headers.get('www-authenticate'),
      body: await res.text(),
    };
  };
  try {
    const ok = await call(`Bearer ${await mintJwt(td, WEB, ['api'])}`);
    assert.deepEqual([ok.status, ok.body], [200, `hello ${WEB}`]);
    for (const auth of [
      `Bearer ${await mintJwt(td, WEB, ['other'])}`,
      `Bearer ${await mintJwt(td, WEB, ['api'], { now: Date.now() - 3_600_000 })}`,
      'Bearer garbage',
    ]) {
      const r = await call(auth);
      assert.equal(r.status, 401);
      assert.equal(r.challenge, 'Bearer realm="spiffe", error="invalid_token"');
    }
    const none = await call();
    assert.deepEqual([none.status, none.challenge], [401, 'Bearer realm="spiffe"']);
    const basic = await call('Basic dXNlcjpwYXNz');
    assert.equal(basic.status, 401);
    const refused = await call(
      `Bearer ${await mintJwt(partner, 'spiffe://partner.test/x', ['api'])}`,
    );
    assert.equal(refused.status, 401, 'no bundle for partner.test in this static set');
  } finally {
    server.close();
  }
  const fedBundles = staticJwtBundles(jwksOf(td, partner));
  const strict = jwtSvidMiddleware(
    new JwtSvidVerifier({
      bundles: fedBundles,
      audience: 'api',
      authorizer: authorizeMemberOf('example.org'),
    }),
  );
  const forbidden = await new Promise<number>((resolve) => {
    const s2 = http.createServer((req, res) =>
      strict(req, res, () => res.end('should not happen')),
    );
    s2.listen(0, '127.0.0.1', async () => {
      const p = (s2.address() as AddressInfo).port;
      const token = await mintJwt(partner, 'spiffe://partner.test/x', ['api']);
      const r = await fetch(`http://127.0.0.1:${p}/`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(
        r.headers.get('www-authenticate'),
        'Bearer realm="spiffe", error="insufficient_scope"',
      );
      s2.close();
      resolve(r.status);
    });
  });
  assert.equal(forbidden, 403);
});
