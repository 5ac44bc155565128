// Black-box: the public listener (OIDC discovery, JWKS, https_web bundle endpoint) and the
// https_spiffe bundle endpoint on the API listener, checked with openid-client and jose.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as jose from 'jose';
import * as client from 'openid-client';
import { derToPem } from '../src/crypto/x509/pem.ts';
import { adminClients } from './helpers/admin.ts';
import { fetchTrusting, makeTlsFiles } from './helpers/https.ts';
import { freePort } from './helpers/ports.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';

/** A request over HTTP/2 + TLS to the API listener, pinning the server's SPIFFE ID. */
function apiRequest(
  addr: string,
  caPem: string,
  spiffeId: string,
  method: string,
  reqPath: string,
  body?: string,
): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://${addr}`, {
      ca: caPem,
      checkServerIdentity: (_host, cert) => {
        const san = new X509Certificate(cert.raw).subjectAltName ?? '';
        return san.split(', ').includes(`URI:${spiffeId}`)
          ? undefined
          : new Error(`unexpected server identity ${san}`);
      },
    });
    session.on('error', reject);
    const req = session.request({ ':method': method, ':path': reqPath });
    let headers: http2.IncomingHttpHeaders = {};
    let data = '';
    req.on('response', (h) => (headers = h));
    req.setEncoding('utf8');
    req.on('data', (c: string) => (data += c));
    req.on('end', () => {
      session.close();
      resolve({ status: Number(headers[':status']), headers, body: data });
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('public listener: OIDC discovery, JWKS and bundle endpoints', () => {
  let server: ServerProcess;
  let issuer: string;
  let caPem: string;
  let httpsFetch: ReturnType<typeof fetchTrusting>;

  before(async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-oidc-'));
    const tls = makeTlsFiles(dir);
    caPem = tls.caPem;
    httpsFetch = fetchTrusting(caPem);
    const port = await freePort();
    server = await startServer({
      config: {
        public_listen: `127.0.0.1:${port}`,
        public_cert_file: tls.certFile,
        public_key_file: tls.keyFile,
      },
    });
    // The default issuer: the public listener's URL, https since a certificate is configured.
    issuer = `https://127.0.0.1:${port}`;
  });
  after(async () => {
    await server?.stop();
  });

  it('openid-client discovers the provider over HTTPS; issuer matches exactly', async () => {
    const config = await client.discovery(new URL(issuer), 'test-client', undefined, undefined, {
      [client.customFetch]: httpsFetch,
    });
    const md = config.serverMetadata();
    assert.equal(md.issuer, issuer);
    assert.equal(md.jwks_uri, `${issuer}/keys`);
    assert.deepEqual(md.response_types_supported, ['id_token']);
    assert.deepEqual(md.subject_types_supported, ['public']);
    assert.deepEqual(md.id_token_signing_alg_values_supported, ['ES256']);
    assert.equal(md.token_endpoint, `${issuer}/token`);
    assert.equal(md.introspection_endpoint, `${issuer}/introspect`);
    assert.equal(md.revocation_endpoint, `${issuer}/revoke`);
    const res = await httpsFetch(`${issuer}/.well-known/openid-configuration`, {});
    assert.match(res.headers.get('cache-control') ?? '', /max-age=\d+/);
    // The advertised token endpoint is served with the public listener (POST only), with no
    // sts block in the config.
    assert.equal((await httpsFetch(`${issuer}/token`, {})).status, 405);
  });

  it('jose verifies a minted JWT-SVID against the JWKS; iss is the issuer', async () => {
    const admin = adminClients(server.adminSocket);
    const { token } = await admin.svids.mintJWTSVID({
      spiffeId: 'spiffe://example.org/workload',
      audience: ['aud1'],
    });
    const jwks = jose.createRemoteJWKSet(new URL(`${issuer}/keys`), {
      [jose.customFetch]: httpsFetch as unknown as typeof fetch,
    });
    const { payload } = await jose.jwtVerify(token, jwks, { issuer, audience: 'aud1' });
    assert.equal(payload.iss, issuer);
    assert.equal(payload.sub, 'spiffe://example.org/workload');
    const doc = (await (await httpsFetch(`${issuer}/keys`, {})).json()) as {
      keys: Array<Record<string, unknown>>;
    };
    for (const k of doc.keys) {
      assert.equal(k.use, 'sig');
      assert.equal(k.alg, 'ES256');
      assert.equal(typeof k.kid, 'string');
      assert.equal(k.kty, 'EC');
      assert.equal(k.d, undefined);
    }
  });

  it('a prepared JWT authority appears in the JWKS before it signs', async () => {
    const admin = adminClients(server.adminSocket);
    const prepared = await admin.authorities.prepareAuthority({ kind: 'jwt' });
    const kid = prepared.authority!.id;
    const { token } = await admin.svids.mintJWTSVID({
      spiffeId: 'spiffe://example.org/workload',
      audience: ['aud1'],
    });
    assert.notEqual(jose.decodeProtectedHeader(token).kid, kid, 'prepared key must not sign yet');
    let kids: string[] = [];
    for (let i = 0; i < 100; i++) {
      const doc = (await (await httpsFetch(`${issuer}/keys`, {})).json()) as {
        keys: Array<{ kid: string }>;
      };
      kids = doc.keys.map((k) => k.kid);
      if (kids.includes(kid)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(kids.includes(kid), `prepared kid ${kid} not in JWKS ${kids.join(',')}`);
  });

  it('serves the SPIFFE bundle at /bundle on the public listener (https_web); POST is 405', async () => {
    const res = await httpsFetch(`${issuer}/bundle`, {});
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const b = (await res.json()) as {
      keys: Array<{ use: string }>;
      spiffe_sequence: number;
      spiffe_refresh_hint: number;
    };
    assert.ok(b.keys.some((k) => k.use === 'x509-svid'));
    assert.ok(b.keys.some((k) => k.use === 'jwt-svid'));
    assert.equal(typeof b.spiffe_sequence, 'number');
    const post = await httpsFetch(`${issuer}/bundle`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"x":1}',
    });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET');
    // A body far over any limit gets the same answer, unread: the server must not reset the
    // connection before the client has its 405.
    const big = await httpsFetch(`${issuer}/bundle`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: 'x'.repeat(100_000),
    });
    assert.equal(big.status, 405);
    assert.equal(big.headers.get('allow'), 'GET');
    const withBody = await httpsFetch(`${issuer}/keys`, { method: 'GET', body: 'abc' });
    assert.equal(withBody.status, 400);
    assert.equal((await httpsFetch(`${issuer}/nothing`, {})).status, 404);
  });

  it('serves the bundle at /bundle on the API listener (https_spiffe), without a client cert', async () => {
    const admin = adminClients(server.adminSocket);
    const { bundle } = await admin.bundles.getBundle({});
    const trust = bundle!.x509Authorities.map((d) => derToPem(d)).join('');
    const id = 'spiffe://example.org/spire/server';
    const res = await apiRequest(server.apiAddr, trust, id, 'GET', '/bundle');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    const b = JSON.parse(res.body) as { keys: unknown[]; spiffe_sequence: number };
    assert.ok(b.keys.length >= 2);
    const post = await apiRequest(server.apiAddr, trust, id, 'POST', '/bundle', 'x');
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET');
    // The Connect API is still served next to it.
    const status = await apiRequest(
      server.apiAddr,
      trust,
      id,
      'POST',
      '/tessera.v1.NoSuch/Method',
      '{}',
    );
    assert.notEqual(status.status, 200);
  });
});

describe('public listener: plain HTTP with a path-prefixed issuer', () => {
  let server: ServerProcess;
  let issuer: string;

  before(async () => {
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}/tenant1`;
    server = await startServer({
      config: { public_listen: `127.0.0.1:${port}`, jwt: { issuer } },
    });
  });
  after(async () => {
    await server?.stop();
  });

  it('serves discovery, JWKS and bundle under the issuer path', async () => {
    const config = await client.discovery(new URL(issuer), 'test-client', undefined, undefined, {
      execute: [client.allowInsecureRequests],
    });
    const md = config.serverMetadata();
    assert.equal(md.issuer, issuer);
    assert.equal(md.jwks_uri, `${issuer}/keys`);
    const admin = adminClients(server.adminSocket);
    const { token } = await admin.svids.mintJWTSVID({
      spiffeId: 'spiffe://example.org/w',
      audience: ['a'],
    });
    const { payload } = await jose.jwtVerify(
      token,
      jose.createRemoteJWKSet(new URL(md.jwks_uri!)),
      {
        issuer,
        audience: 'a',
      },
    );
    assert.equal(payload.iss, issuer);
    const bundle = await fetch(`${issuer}/bundle`);
    assert.equal(bundle.status, 200);
    assert.match(bundle.headers.get('content-type') ?? '', /^application\/json/);
    const root = new URL(issuer).origin;
    assert.equal((await fetch(`${root}/.well-known/openid-configuration`)).status, 404);
    assert.equal((await fetch(`${root}/bundle`)).status, 404);
  });
});
