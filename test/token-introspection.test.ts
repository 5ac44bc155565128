// Black-box: RFC 7662 introspection and RFC 7009 revocation of the server's access tokens on the
// public listener (plain HTTP), with openid-client as the caller; then two servers sharing one
// PostgreSQL: a revocation on one is seen by the other at once.
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as jose from 'jose';
import * as client from 'openid-client';
import { githubClaims } from '../src/server/sts/policy/claims-fixtures.ts';
import { GITHUB_ISSUER, githubActionsPolicy } from '../src/server/sts/policy/templates.ts';
import { adminClients } from './helpers/admin.ts';
import { freePort } from './helpers/ports.ts';
import { createTempDatabase, type TempDatabase } from './helpers/postgres.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';
import { AT_TYPE, GH_AUD, GRANT, JWT_TYPE, testIssuer } from './helpers/test-oidc-issuer.ts';

/** A stand-in GitHub Actions issuer: a key and the JWKS file the server trusts. */
function githubIssuer(): { jwksFile: string; key: KeyObject } {
  const { jwksFile, signingKey } = testIssuer();
  return { jwksFile, key: signingKey };
}

// The caller's token comes from the `gateway` environment; the first policy that admits wins.
const atPolicy = (name: string, audience: string, environment: string) => ({
  name,
  issuer: GITHUB_ISSUER,
  condition: `assertion.repository_owner == "octo-org" && assertion.environment == "${environment}"`,
  attribute_mapping: { subject: 'assertion.sub' },
  access_token: { audience, scopes: ['read', 'write'] },
  ttl: '10m',
});

const stsConfig = (jwksFile: string) => ({
  issuers: [{ issuer: GITHUB_ISSUER, jwks_file: jwksFile, audiences: [GH_AUD] }],
  policies: [
    githubActionsPolicy({ trustDomain: 'example.org', owner: 'octo-org' }),
    atPolicy('octo-api', 'https://api.example.org', 'prod'),
    atPolicy('introspector', 'https://gateway.example.org', 'gateway'),
  ],
  introspection_clients: ['introspector'],
});

/** Exchanges a freshly signed GitHub token at `base`/token. */
async function exchange(
  base: string,
  key: KeyObject,
  extra: Record<string, string>,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const gateway = extra.audience === 'https://gateway.example.org';
  const token = await new jose.SignJWT({
    ...githubClaims(),
    ...(gateway ? { environment: 'gateway' } : {}),
    iat: now - 10,
    nbf: now - 10,
    exp: now + 300,
  })
    .setProtectedHeader({ alg: 'ES256', kid: 'gh-1', typ: 'JWT' })
    .sign(key);
  const res = await fetch(`${base}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: GRANT,
      subject_token: token,
      subject_token_type: JWT_TYPE,
      ...extra,
    }).toString(),
  });
  const json = (await res.json()) as Record<string, unknown>;
  assert.equal(res.status, 200, JSON.stringify(json));
  return json.access_token as string;
}

const accessToken = (base: string, key: KeyObject, audience = 'https://api.example.org') =>
  exchange(base, key, { requested_token_type: AT_TYPE, audience });

async function post(
  url: string,
  body: string,
  bearer?: string,
): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
    },
    body,
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as never };
}

const bearerAuth =
  (token: () => string): client.ClientAuth =>
  (_as, _client, _body, headers) => {
    headers.set('authorization', `Bearer ${token()}`);
  };

describe('token introspection (RFC 7662) and revocation (RFC 7009)', () => {
  let server: ServerProcess;
  let issuer: string;
  let key: KeyObject;
  let caller = '';
  let config: client.Configuration;

  before(async () => {
    const gh = githubIssuer();
    key = gh.key;
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    server = await startServer({
      config: { public_listen: `127.0.0.1:${port}`, jwt: { issuer }, sts: stsConfig(gh.jwksFile) },
    });
    caller = await accessToken(issuer, key, 'https://gateway.example.org');
    config = await client.discovery(
      new URL(issuer),
      'introspector',
      undefined,
      bearerAuth(() => caller),
      { execute: [client.allowInsecureRequests] },
    );
  });
  after(async () => {
    await server?.stop();
  });

  const audits = async (action: string) =>
    (await adminClients(server.adminSocket).audit.listAuditRecords({ action, limit: 500 })).records;

  it('openid-client introspects an active token, revokes it, and it is inactive at once', async () => {
    const token = await accessToken(issuer, key);
    const claims = jose.decodeJwt(token);
    const active = await client.tokenIntrospection(config, token, {
      token_type_hint: 'access_token',
    });
    assert.equal(active.active, true);
    assert.equal(active.client_id, 'octo-api');
    assert.equal(active.sub, 'repo:octo-org/octo-repo:environment:prod');
    assert.equal(active.aud, 'https://api.example.org');
    assert.equal(active.iss, issuer);
    assert.equal(active.scope, 'read write');
    assert.equal(active.token_type, 'Bearer');
    assert.equal(active.jti, claims.jti);
    assert.equal(active.exp, claims.exp);
    assert.equal(active.iat, claims.iat);

    await client.tokenRevocation(config, token);
    const inactive = await client.tokenIntrospection(config, token);
    assert.deepEqual(inactive, { active: false });
    // Revoking again, or revoking garbage, is still 200 (RFC 7009 §2.2).
    await client.tokenRevocation(config, token);
    await client.tokenRevocation(config, 'not-a-token');

    const revokes = await audits('sts.revoke');
    const ok = revokes.find((r) => r.target === claims.jti);
    assert.ok(ok, 'the revocation is audited');
    assert.equal(ok.outcome, 'success');
    assert.equal(ok.details?.client_id, 'octo-api');
    assert.equal(ok.details?.caller, 'introspector');
    const text = JSON.stringify(revokes, (_k, v: unknown) =>
      typeof v === 'bigint' ? String(v) : v,
    );
    assert.ok(!text.includes(token.split('.')[2] ?? '-'), 'no token in the audit log');
  });

  it('answers {active: false} for anything that is not an active token of ours', async () => {
    const at = await accessToken(issuer, key);
    const [h, p, s] = at.split('.') as [string, string, string];
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const payload = jose.decodeJwt(at);
    const svid = await exchange(issuer, key, { audience: 'https://svc.example.org' });
    const foreign = await new jose.SignJWT({ ...payload })
      .setProtectedHeader({ alg: 'ES256', kid: jose.decodeProtectedHeader(at).kid!, typ: 'at+jwt' })
      .sign(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    const cases: Record<string, string> = {
      malformed: 'abc',
      'three dots of garbage': 'a.b.c',
      'tampered payload': `${h}.${b64({ ...payload, scope: 'admin' })}.${s}`,
      'alg none': `${b64({ alg: 'none', typ: 'at+jwt' })}.${p}.`,
      'signed by another key under our kid': foreign,
      'a JWT-SVID is not an access token': svid,
      'oversized token': 'a'.repeat(9000),
    };
    for (const [name, token] of Object.entries(cases)) {
      const r = await post(
        `${issuer}/introspect`,
        new URLSearchParams({ token }).toString(),
        caller,
      );
      assert.equal(r.status, 200, name);
      assert.deepEqual(r.json, { active: false }, name);
    }
  });

  it('refuses callers without an allowed bearer token, and audits it', async () => {
    const token = await accessToken(issuer, key);
    const body = new URLSearchParams({ token }).toString();
    for (const path of ['/introspect', '/revoke']) {
      const none = await post(`${issuer}${path}`, body);
      assert.equal(none.status, 401, path);
      assert.equal(none.json.error, 'invalid_token');
      assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer error="invalid_token"/);
      const notAllowed = await post(`${issuer}${path}`, body, token);
      assert.equal(notAllowed.status, 403, path);
      assert.equal(notAllowed.json.error, 'insufficient_scope');
    }
    // The token was not revoked by the refused callers.
    assert.equal((await client.tokenIntrospection(config, token)).active, true);
    const denied = (await audits('sts.introspect')).filter((r) => r.outcome === 'denied');
    assert.ok(denied.length >= 2);
    assert.ok(denied.some((r) => /may not introspect/.test(String(r.details?.reason))));
    const refusedRevokes = (await audits('sts.revoke')).filter((r) => r.outcome === 'denied');
    assert.ok(refusedRevokes.length >= 2);
    // A revoked caller token is refused.
    const other = await accessToken(issuer, key, 'https://gateway.example.org');
    await client.tokenRevocation(config, other);
    const r = await post(`${issuer}/introspect`, body, other);
    assert.equal(r.status, 401);
  });

  it('rejects bad requests with invalid_request', async () => {
    for (const path of ['/introspect', '/revoke']) {
      const missing = await post(`${issuer}${path}`, 'token_type_hint=access_token', caller);
      assert.equal(missing.status, 400, path);
      assert.equal(missing.json.error, 'invalid_request');
      const big = await post(`${issuer}${path}`, `token=${'a'.repeat(20_000)}`, caller);
      assert.equal(big.status, 400, path);
      assert.equal(big.json.error, 'invalid_request');
      const res = await fetch(`${issuer}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${caller}` },
        body: '{}',
      });
      assert.equal(res.status, 400, path);
      assert.equal(((await res.json()) as { error: string }).error, 'invalid_request');
      const get = await fetch(`${issuer}${path}`);
      assert.equal(get.status, 405, path);
      assert.equal(get.headers.get('allow'), 'POST');
    }
  });
});

describe('revocation across two servers sharing one PostgreSQL', () => {
  let db: TempDatabase;
  let a: ServerProcess;
  let b: ServerProcess;
  let issuer: string;
  let urlB: string;
  let key: KeyObject;

  before(async () => {
    db = await createTempDatabase();
    const gh = githubIssuer();
    key = gh.key;
    const portA = await freePort();
    const portB = await freePort();
    issuer = `http://127.0.0.1:${portA}`;
    urlB = `http://127.0.0.1:${portB}`;
    const sts = { ...stsConfig(gh.jwksFile), introspection_open: false };
    a = await startServer({
      datastoreUrl: db.url,
      config: { public_listen: `127.0.0.1:${portA}`, jwt: { issuer }, sts },
    });
    // Same issuer; B starts second, so its bundle already holds A's JWT key.
    b = await startServer({
      datastoreUrl: db.url,
      config: { public_listen: `127.0.0.1:${portB}`, jwt: { issuer }, sts },
    });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await db?.drop();
  });

  it('a token revoked on A is inactive on B immediately', async () => {
    const caller = await accessToken(issuer, key, 'https://gateway.example.org');
    const token = await accessToken(issuer, key);
    const body = new URLSearchParams({ token }).toString();
    const before = await post(`${urlB}/introspect`, body, caller);
    assert.equal(before.status, 200);
    assert.equal(before.json.active, true, 'B verifies a token signed by A');
    const revoked = await post(`${issuer}/revoke`, body, caller);
    assert.equal(revoked.status, 200);
    const after = await post(`${urlB}/introspect`, body, caller);
    assert.deepEqual(after.json, { active: false });
  });
});
