// Black-box: the RFC 8693 token endpoint on the public listener (plain HTTP, explicit issuer).
// A local test OIDC issuer (a JWKS file from a key generated here) stands in for GitHub Actions.
import assert from 'node:assert/strict';
import net from 'node:net';
import type { KeyObject } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as jose from 'jose';
import * as client from 'openid-client';
import { githubClaims } from '../src/server/sts/policy/claims-fixtures.ts';
import { GITHUB_ISSUER } from '../src/server/sts/policy/templates.ts';
import { adminClients } from './helpers/admin.ts';
import type { ServerProcess } from './helpers/server-process.ts';
import { OCTO_API_POLICY, githubPolicy, startStsServer } from './helpers/sts-server.ts';
import { AT_TYPE, GRANT, JWT_TYPE } from './helpers/test-oidc-issuer.ts';

describe('token exchange (RFC 8693)', () => {
  let server: ServerProcess;
  let issuer: string;
  let signingKey: KeyObject;
  let publicKey: KeyObject;

  before(async () => {
    ({ server, issuer, signingKey, publicKey } = await startStsServer({
      policies: [githubPolicy(), OCTO_API_POLICY],
    }));
  });
  after(async () => {
    await server?.stop();
  });

  const now = () => Math.floor(Date.now() / 1000);
  const claims = (over: Record<string, unknown> = {}) => ({
    ...githubClaims(),
    iat: now() - 10,
    nbf: now() - 10,
    exp: now() + 300,
    ...over,
  });
  const sign = (c: Record<string, unknown>, header: Record<string, unknown> = {}) =>
    new jose.SignJWT(c)
      .setProtectedHeader({ alg: 'ES256', kid: 'gh-1', typ: 'JWT', ...header })
      .sign(signingKey);
  const post = async (body: string, contentType = 'application/x-www-form-urlencoded') => {
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': contentType },
      body,
    });
    return {
      status: res.status,
      headers: res.headers,
      json: (await res.json()) as Record<string, unknown>,
    };
  };
  const form = (p: Record<string, string>) => new URLSearchParams(p).toString();
  const exchange = (token: string, extra: Record<string, string> = {}) =>
    post(
      form({
        grant_type: GRANT,
        subject_token: token,
        subject_token_type: JWT_TYPE,
        audience: 'https://svc.example.org',
        ...extra,
      }),
    );
  const audits = async () =>
    (
      await adminClients(server.adminSocket).audit.listAuditRecords({
        action: 'sts.exchange',
        limit: 500,
      })
    ).records;

  it('openid-client exchanges a GitHub Actions token for a JWT-SVID that verifies', async () => {
    const config = await client.discovery(new URL(issuer), 'ci', undefined, client.None(), {
      execute: [client.allowInsecureRequests],
    });
    const token = await sign(claims());
    const res = await client.genericGrantRequest(config, GRANT, {
      subject_token: token,
      subject_token_type: JWT_TYPE,
      audience: 'https://svc.example.org',
    });
    assert.equal(res.issued_token_type, JWT_TYPE);
    assert.equal(res.token_type, 'n_a');
    assert.ok(res.expires_in && res.expires_in > 0 && res.expires_in <= 15 * 60);
    const jwks = jose.createRemoteJWKSet(new URL(`${issuer}/keys`));
    const { payload } = await jose.jwtVerify(res.access_token, jwks, {
      issuer,
      audience: 'https://svc.example.org',
    });
    assert.equal(payload.sub, 'spiffe://example.org/ci/github/octo-org/octo-repo');
    const records = await audits();
    const ok = records.find((r) => r.outcome === 'success');
    assert.ok(ok, 'the exchange is audited');
    assert.equal(ok.details?.issuer, GITHUB_ISSUER);
    assert.equal(ok.details?.policy, 'github-octo-org');
    assert.ok(
      !JSON.stringify(records, (_k, v: unknown) =>
        typeof v === 'bigint' ? String(v) : v,
      ).includes(token.split('.')[2] ?? '-'),
    );
  });

  it('an access-token policy yields an RFC 9068 token', async () => {
    const r = await exchange(await sign(claims()), {
      requested_token_type: AT_TYPE,
      audience: 'https://api.example.org',
      scope: 'read',
    });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.headers.get('cache-control'), 'no-store');
    assert.equal(r.json.token_type, 'Bearer');
    assert.equal(r.json.issued_token_type, AT_TYPE);
    const token = r.json.access_token as string;
    const jwks = jose.createRemoteJWKSet(new URL(`${issuer}/keys`));
    const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
      issuer,
      audience: 'https://api.example.org',
      typ: 'at+jwt',
    });
    assert.equal(protectedHeader.typ, 'at+jwt');
    assert.equal(payload.sub, 'repo:octo-org/octo-repo:environment:prod');
    assert.equal(payload.client_id, 'octo-api');
    assert.equal(payload.scope, 'read');
    assert.ok(typeof payload.jti === 'string' && payload.jti.length >= 16);
    assert.ok(payload.exp! - payload.iat! <= 600);
    const bad = await exchange(await sign(claims()), {
      requested_token_type: AT_TYPE,
      audience: 'https://other.example.org',
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error, 'invalid_target');
  });

  describe('attacks are refused, nothing is issued, and each is audited', () => {
    const pubBytes = () => Buffer.from(publicKey.export({ format: 'pem', type: 'spki' }) as string);
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const cases: Array<
      [string, () => Promise<{ status: number; json: Record<string, unknown> }>, string]
    > = [
      [
        'alg none',
        async () => exchange(`${b64({ alg: 'none', kid: 'gh-1' })}.${b64(claims())}.`),
        'invalid_grant',
      ],
      [
        'HS256 signed with the public key bytes',
        async () =>
          exchange(
            await new jose.SignJWT(claims())
              .setProtectedHeader({ alg: 'HS256', kid: 'gh-1' })
              .sign(new Uint8Array(pubBytes())),
          ),
        'invalid_grant',
      ],
      [
        'unknown kid',
        async () => exchange(await sign(claims(), { kid: 'other' })),
        'invalid_grant',
      ],
      [
        'wrong aud',
        async () => exchange(await sign(claims({ aud: 'https://github.com/evil' }))),
        'invalid_grant',
      ],
      ['expired', async () => exchange(await sign(claims({ exp: now() - 120 }))), 'invalid_grant'],
      [
        'nbf in the future',
        async () => exchange(await sign(claims({ nbf: now() + 600 }))),
        'invalid_grant',
      ],
      [
        'unregistered issuer',
        async () => exchange(await sign(claims({ iss: 'https://evil.example' }))),
        'invalid_grant',
      ],
      [
        'claims failing the condition',
        async () =>
          exchange(await sign(claims({ repository_owner: 'evil', repository: 'evil/x' }))),
        'invalid_grant',
      ],
      ['oversized token', async () => exchange('a'.repeat(9000)), 'invalid_request'],
      ['malformed form', async () => post('grant_type=%ZZ&subject_token=x'), 'invalid_request'],
      [
        'repeated parameter',
        async () => post(`grant_type=${encodeURIComponent(GRANT)}&grant_type=x`),
        'invalid_request',
      ],
      [
        'wrong content type',
        async () => post(JSON.stringify({ grant_type: GRANT }), 'application/json'),
        'invalid_request',
      ],
      [
        'wrong grant_type',
        async () =>
          post(
            form({
              grant_type: 'client_credentials',
              subject_token: 'x',
              subject_token_type: JWT_TYPE,
            }),
          ),
        'unsupported_grant_type',
      ],
    ];
    const reasons: Record<string, RegExp> = {
      'alg none': /alg "none"/,
      'HS256 signed with the public key bytes': /alg "HS256"/,
      'unknown kid': /unknown kid/,
      'wrong aud': /audience/,
      expired: /expired/,
      'nbf in the future': /not yet valid/,
      'unregistered issuer': /unregistered issuer/,
      'claims failing the condition': /github-octo-org: condition/,
      'oversized token': /larger than/,
      'malformed form': /malformed/,
      'repeated parameter': /repeated/,
      'wrong grant_type': /grant_type must be/,
    };
    for (const [name, run, error] of cases) {
      it(name, async () => {
        const before = (await audits()).filter((r) => r.outcome === 'denied').length;
        const successes = (await audits()).filter((r) => r.outcome === 'success').length;
        const r = await run();
        assert.equal(r.status, 400, JSON.stringify(r.json));
        assert.equal(r.json.error, error, JSON.stringify(r.json));
        assert.equal(typeof r.json.error_description, 'string');
        assert.equal(r.json.access_token, undefined);
        const after = await audits();
        if (name !== 'wrong content type') {
          const denied = after.filter((r) => r.outcome === 'denied');
          assert.equal(denied.length, before + 1, 'audited');
          assert.match(String(denied.at(-1)?.details?.reason), reasons[name] ?? /^$/);
        }
        assert.equal(
          after.filter((r) => r.outcome === 'success').length,
          successes,
          'nothing issued',
        );
      });
    }
  });

  it('GET /token is refused; the body limit holds', async () => {
    const res = await fetch(`${issuer}/token`);
    assert.equal(res.status, 405);
    const big = await post('x=' + 'a'.repeat(20_000));
    assert.equal(big.status, 400);
    assert.equal(big.json.error, 'invalid_request');
    // Chunked, so no content-length announces the size: refused once the limit is passed.
    const chunk = new TextEncoder().encode('x=' + 'a'.repeat(6000));
    const chunked = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new ReadableStream({
        start(c) {
          for (let i = 0; i < 4; i++) c.enqueue(chunk);
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    assert.equal(chunked.status, 400);
    assert.equal(((await chunked.json()) as { error: string }).error, 'invalid_request');
    // A body that never ends is dropped for a while, then the server closes the connection.
    const { hostname, port } = new URL(issuer);
    const closedByServer = await new Promise<boolean>((resolve) => {
      const sock = net.connect(Number(port), hostname);
      const piece = Buffer.from(`1000\r\n${'a'.repeat(0x1000)}\r\n`);
      let sent = 0;
      sock.on('error', () => resolve(true));
      sock.on('close', () => resolve(true));
      sock.on('connect', () => {
        sock.write(
          'POST /token HTTP/1.1\r\nHost: x\r\n' +
            'Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n',
        );
        const pump = () => {
          while (sent < 64 * 1024 * 1024) {
            sent += piece.length;
            if (!sock.write(piece)) {
              sock.once('drain', pump);
              return;
            }
          }
          setTimeout(() => {
            sock.destroy();
            resolve(false);
          }, 5000);
        };
        pump();
      });
    });
    assert.ok(closedByServer, 'the server closed the connection');
  });
});

describe('token endpoint rate limit', () => {
  let server: ServerProcess;
  let issuer: string;

  before(async () => {
    ({ server, issuer } = await startStsServer({
      policies: [githubPolicy()],
      rate_limit: { per_second: 0.5, burst: 3 },
    }));
  });
  after(async () => {
    await server?.stop();
  });

  it('refuses an address over its rate with 429 slow_down, unaudited, and counts it', async () => {
    const post = (path: string) =>
      fetch(`${issuer}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: GRANT, subject_token: 'x.y.z' }).toString(),
      });
    // The token, introspection and revocation endpoints share the address's bucket.
    const statuses = [];
    for (const path of ['/token', '/token', '/introspect', '/token', '/revoke'])
      statuses.push((await post(path)).status);
    assert.deepEqual(statuses.slice(0, 3), [400, 400, 401]);
    assert.deepEqual(statuses.slice(3), [429, 429]);
    const limited = await post('/token');
    assert.equal(limited.status, 429);
    assert.equal(Number(limited.headers.get('retry-after')) >= 1, true);
    assert.equal(limited.headers.get('cache-control'), 'no-store');
    assert.equal(((await limited.json()) as { error: string }).error, 'slow_down');
    // Only the two exchanges that were let through are audited.
    const records = (
      await adminClients(server.adminSocket).audit.listAuditRecords({
        action: 'sts.exchange',
        limit: 50,
      })
    ).records;
    assert.equal(records.length, 2);
    const metrics = await (await fetch(`http://${server.healthAddr}/metrics`)).text();
    assert.match(metrics, /^tessera_public_rate_limited_total 3$/m);
  });
});
