// Black-box: RFC 9449 DPoP at the token endpoint over HTTPS — openid-client's DPoP handle, the
// binding (cnf.jkt) seen by introspection, and attacks on the proof, each refused with
// invalid_dpop_proof, audited, with nothing issued. Then replay across two servers sharing one
// PostgreSQL database.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, type KeyObject, type webcrypto } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as jose from 'jose';
import * as client from 'openid-client';
import { githubClaims } from '../src/server/sts/policy/claims-fixtures.ts';
import { GITHUB_ISSUER } from '../src/server/sts/policy/templates.ts';
import { adminClients } from './helpers/admin.ts';
import { fetchTrusting, makeTlsFiles } from './helpers/https.ts';
import { freePort } from './helpers/ports.ts';
import { createTempDatabase, type TempDatabase } from './helpers/postgres.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';
import { AT_TYPE, GH_AUD, GRANT, JWT_TYPE, testIssuer } from './helpers/test-oidc-issuer.ts';

const API_AUD = 'https://api.example.org';
const BOUND_AUD = 'https://bound.example.org';
const octoApi = {
  name: 'octo-api',
  issuer: GITHUB_ISSUER,
  condition: 'assertion.repository_owner == "octo-org"',
  attribute_mapping: { subject: 'assertion.sub' },
  access_token: { audience: API_AUD, scopes: ['read', 'write'] },
  ttl: '10m',
};
const spiffePolicy = {
  name: 'octo-ci',
  issuer: GITHUB_ISSUER,
  condition: 'assertion.repository_owner == "octo-org"',
  attribute_mapping: { subject: 'assertion.sub' },
  spiffe_id: 'spiffe://example.org/ci/{subject}',
};
const now = () => Math.floor(Date.now() / 1000);
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** A DPoP proof signed by `key` (its public JWK in the header unless overridden). */
async function proof(
  key: { privateKey: KeyObject; publicKey: KeyObject },
  htu: string,
  over: { header?: Record<string, unknown>; claims?: Record<string, unknown> } = {},
): Promise<string> {
  return new jose.SignJWT({
    jti: randomBytes(16).toString('base64url'),
    htm: 'POST',
    htu,
    iat: now(),
    ...over.claims,
  })
    .setProtectedHeader({
      alg: 'ES256',
      typ: 'dpop+jwt',
      jwk: await jose.exportJWK(key.publicKey),
      ...over.header,
    })
    .sign(key.privateKey);
}
const ecKey = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });

describe('DPoP at the token endpoint (RFC 9449)', () => {
  let server: ServerProcess;
  let issuer: string;
  let signingKey: KeyObject;
  let httpsFetch: ReturnType<typeof fetchTrusting>;

  before(async () => {
    let jwksFile: string;
    ({ jwksFile, signingKey } = testIssuer());
    const tls = makeTlsFiles(mkdtempSync(path.join(os.tmpdir(), 'tessera-dpop-')));
    httpsFetch = fetchTrusting(tls.caPem);
    const port = await freePort();
    issuer = `https://127.0.0.1:${port}`;
    server = await startServer({
      config: {
        public_listen: `127.0.0.1:${port}`,
        public_cert_file: tls.certFile,
        public_key_file: tls.keyFile,
        sts: {
          issuers: [{ issuer: GITHUB_ISSUER, jwks_file: jwksFile, audiences: [GH_AUD] }],
          policies: [
            octoApi,
            spiffePolicy,
            {
              ...octoApi,
              name: 'octo-bound',
              access_token: { audience: BOUND_AUD, scopes: [], require_dpop: true },
            },
          ],
          introspection_clients: ['octo-api'],
        },
      },
    });
  });
  after(async () => {
    await server?.stop();
  });

  const subjectToken = (over: Record<string, unknown> = {}) =>
    new jose.SignJWT({
      ...githubClaims(),
      iat: now() - 10,
      nbf: now() - 10,
      exp: now() + 300,
      ...over,
    })
      .setProtectedHeader({ alg: 'ES256', kid: 'gh-1', typ: 'JWT' })
      .sign(signingKey);
  const atForm = async (extra: Record<string, string> = {}) =>
    new URLSearchParams({
      grant_type: GRANT,
      subject_token: await subjectToken(),
      subject_token_type: JWT_TYPE,
      requested_token_type: AT_TYPE,
      audience: API_AUD,
      ...extra,
    }).toString();
  const post = async (url: string, body: string, headers: Record<string, string> = {}) => {
    const res = await httpsFetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body,
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const tokenEndpoint = () => `${issuer}/token`;
  const exchange = async (dpop: string | undefined, extra: Record<string, string> = {}) =>
    post(tokenEndpoint(), await atForm(extra), dpop === undefined ? {} : { dpop });
  const audits = async () =>
    (
      await adminClients(server.adminSocket).audit.listAuditRecords({
        action: 'sts.exchange',
        limit: 1000,
      })
    ).records;
  const introspect = async (token: string) => {
    const bearer = await exchange(undefined);
    assert.equal(bearer.json.token_type, 'Bearer');
    return post(`${issuer}/introspect`, new URLSearchParams({ token }).toString(), {
      authorization: `Bearer ${String(bearer.json.access_token)}`,
    });
  };

  it('openid-client with a DPoP handle gets a DPoP-bound access token over HTTPS', async () => {
    const config = await client.discovery(new URL(issuer), 'ci', undefined, client.None(), {
      [client.customFetch]: httpsFetch,
    });
    const md = config.serverMetadata();
    assert.ok(md.dpop_signing_alg_values_supported?.includes('ES256'));
    assert.ok(!md.dpop_signing_alg_values_supported?.includes('HS256'));
    const keyPair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const dpop = client.getDPoPHandle(config, keyPair);
    const res = await client.genericGrantRequest(
      config,
      GRANT,
      {
        subject_token: await subjectToken(),
        subject_token_type: JWT_TYPE,
        requested_token_type: AT_TYPE,
        audience: API_AUD,
        scope: 'read',
      },
      { DPoP: dpop },
    );
    assert.equal(res.token_type, 'dpop');
    assert.equal(res.issued_token_type, AT_TYPE);
    const jkt = await jose.calculateJwkThumbprint(await jose.exportJWK(keyPair.publicKey));
    const jwks = jose.createRemoteJWKSet(new URL(`${issuer}/keys`), {
      [jose.customFetch]: httpsFetch as unknown as typeof fetch,
    });
    const { payload } = await jose.jwtVerify(res.access_token, jwks, {
      issuer,
      audience: API_AUD,
      typ: 'at+jwt',
    });
    assert.deepEqual(payload.cnf, { jkt });

    const intro = await introspect(res.access_token);
    assert.equal(intro.status, 200);
    assert.equal(intro.json.active, true);
    assert.equal(intro.json.token_type, 'DPoP');
    assert.deepEqual(intro.json.cnf, { jkt });

    // A DPoP-bound token is no bearer credential for the introspection endpoint itself.
    const asCaller = await post(
      `${issuer}/introspect`,
      new URLSearchParams({ token: res.access_token }).toString(),
      { authorization: `Bearer ${res.access_token}` },
    );
    assert.equal(asCaller.status, 401);

    const ok = (await audits()).filter((r) => r.details?.dpop_jkt === jkt);
    assert.deepEqual(
      ok.map((r) => [r.outcome, r.details?.policy]),
      [['success', 'octo-api']],
    );
  });

  it('without a DPoP header the token is Bearer and unbound', async () => {
    const r = await exchange(undefined);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.token_type, 'Bearer');
    const intro = await introspect(String(r.json.access_token));
    assert.equal(intro.json.token_type, 'Bearer');
    assert.equal(intro.json.cnf, undefined);
  });

  it('a require_dpop policy refuses a Bearer request and serves a DPoP one', async () => {
    const before = await audits();
    const bearer = await exchange(undefined, { audience: BOUND_AUD });
    assert.equal(bearer.status, 400, JSON.stringify(bearer.json));
    assert.equal(bearer.json.error, 'invalid_dpop_proof');
    assert.equal(bearer.json.access_token, undefined);
    const after = await audits();
    const n = (l: typeof after, o: string) => l.filter((a) => a.outcome === o).length;
    assert.equal(n(after, 'success'), n(before, 'success'), 'nothing issued');
    assert.match(String(after.at(-1)?.details?.reason), /required by trust policy "octo-bound"/);
    const bound = await exchange(await proof(ecKey(), tokenEndpoint()), { audience: BOUND_AUD });
    assert.equal(bound.status, 200, JSON.stringify(bound.json));
    assert.equal(bound.json.token_type, 'DPoP');
  });

  it('htu is compared without query and fragment', async () => {
    const r = await exchange(await proof(ecKey(), `${tokenEndpoint()}?x=1#f`));
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.token_type, 'DPoP');
  });

  describe('attacks on the proof: invalid_dpop_proof, audited, nothing issued', () => {
    const cases: Array<
      [string, () => Promise<{ status: number; json: Record<string, unknown> }>, RegExp]
    > = [
      [
        'replayed proof (same jti twice)',
        async () => {
          const p = await proof(ecKey(), tokenEndpoint());
          const first = await exchange(p);
          assert.equal(first.status, 200, JSON.stringify(first.json));
          return exchange(p);
        },
        /replayed proof/,
      ],
      [
        'same jti with a new proof of the same key',
        async () => {
          const k = ecKey();
          const jti = randomBytes(16).toString('base64url');
          assert.equal(
            (await exchange(await proof(k, tokenEndpoint(), { claims: { jti } }))).status,
            200,
          );
          return exchange(await proof(k, tokenEndpoint(), { claims: { jti, iat: now() - 1 } }));
        },
        /replayed proof/,
      ],
      [
        'wrong htm',
        async () => exchange(await proof(ecKey(), tokenEndpoint(), { claims: { htm: 'GET' } })),
        /htm/,
      ],
      [
        'wrong htu (another path)',
        async () => exchange(await proof(ecKey(), `${issuer}/introspect`)),
        /htu/,
      ],
      [
        'wrong htu (another host)',
        async () => exchange(await proof(ecKey(), 'https://evil.example/token')),
        /htu/,
      ],
      [
        'stale iat',
        async () =>
          exchange(await proof(ecKey(), tokenEndpoint(), { claims: { iat: now() - 300 } })),
        /iat/,
      ],
      [
        'iat in the future',
        async () =>
          exchange(await proof(ecKey(), tokenEndpoint(), { claims: { iat: now() + 300 } })),
        /iat/,
      ],
      [
        'signed by another key than its jwk',
        async () => {
          const other = ecKey();
          return exchange(
            await proof(ecKey(), tokenEndpoint(), {
              header: { jwk: await jose.exportJWK(other.publicKey) },
            }),
          );
        },
        /signature/,
      ],
      [
        'HS256 proof',
        async () => {
          const secret = randomBytes(32);
          const p = await new jose.SignJWT({
            jti: 'x1',
            htm: 'POST',
            htu: tokenEndpoint(),
            iat: now(),
          })
            .setProtectedHeader({
              alg: 'HS256',
              typ: 'dpop+jwt',
              jwk: { kty: 'oct', k: secret.toString('base64url') } as jose.JWK,
            })
            .sign(secret);
          return exchange(p);
        },
        /alg "HS256"/,
      ],
      [
        'alg none',
        async () =>
          exchange(
            `${b64({ alg: 'none', typ: 'dpop+jwt', jwk: await jose.exportJWK(ecKey().publicKey) })}.${b64({ jti: 'x2', htm: 'POST', htu: tokenEndpoint(), iat: now() })}.`,
          ),
        /not a compact JWS|alg "none"/,
      ],
      [
        'private key in the jwk',
        async () => {
          const k = ecKey();
          return exchange(
            await proof(k, tokenEndpoint(), {
              header: { jwk: await jose.exportJWK(k.privateKey) },
            }),
          );
        },
        /private key members/,
      ],
      [
        'alg not matching the jwk type',
        async () => {
          const k = ecKey();
          // A valid ES256 signature relabelled ES384: the key type decides, not the header.
          const p = await proof(k, tokenEndpoint());
          const [h, c, s] = p.split('.');
          const header = JSON.parse(Buffer.from(h!, 'base64url').toString()) as object;
          return exchange(`${b64({ ...header, alg: 'ES384' })}.${c}.${s}`);
        },
        /does not fit the jwk|signature/,
      ],
      [
        'wrong typ',
        async () => exchange(await proof(ecKey(), tokenEndpoint(), { header: { typ: 'JWT' } })),
        /typ/,
      ],
      [
        'no jti',
        async () => exchange(await proof(ecKey(), tokenEndpoint(), { claims: { jti: undefined } })),
        /jti/,
      ],
      [
        'two DPoP headers',
        async () => {
          const k = ecKey();
          const h = new Headers({ 'content-type': 'application/x-www-form-urlencoded' });
          h.append('dpop', await proof(k, tokenEndpoint()));
          h.append('dpop', await proof(k, tokenEndpoint()));
          const res = await httpsFetch(tokenEndpoint(), {
            method: 'POST',
            headers: h,
            body: await atForm(),
          });
          return { status: res.status, json: (await res.json()) as Record<string, unknown> };
        },
        /DPoP/,
      ],
    ];
    for (const [name, run, reason] of cases) {
      it(name, async () => {
        const before = await audits();
        const r = await run();
        assert.equal(r.status, 400, JSON.stringify(r.json));
        assert.equal(r.json.error, 'invalid_dpop_proof', JSON.stringify(r.json));
        assert.equal(r.json.access_token, undefined);
        const after = await audits();
        const count = (l: typeof after, o: string) => l.filter((x) => x.outcome === o).length;
        // The replay cases issue one token first, on purpose, before the refused attempt.
        const issuedBefore = name.startsWith('replayed') || name.startsWith('same jti') ? 1 : 0;
        assert.equal(
          count(after, 'success'),
          count(before, 'success') + issuedBefore,
          'nothing issued',
        );
        assert.equal(count(after, 'denied'), count(before, 'denied') + 1, 'audited');
        const denied = after.filter((x) => x.outcome === 'denied').at(-1);
        assert.match(String(denied?.details?.reason), reason);
        assert.match(String(denied?.details?.reason), /^DPoP: /);
      });
    }
  });

  it('DPoP with a JWT-SVID request is refused (SVIDs cannot be sender-constrained)', async () => {
    const before = await audits();
    const r = await post(
      tokenEndpoint(),
      new URLSearchParams({
        grant_type: GRANT,
        subject_token: await subjectToken(),
        subject_token_type: JWT_TYPE,
        audience: 'https://svc.example.org',
      }).toString(),
      { dpop: await proof(ecKey(), tokenEndpoint()) },
    );
    assert.equal(r.status, 400);
    assert.equal(r.json.error, 'invalid_request');
    const after = await audits();
    assert.equal(
      after.filter((x) => x.outcome === 'success').length,
      before.filter((x) => x.outcome === 'success').length,
    );
    assert.match(String(after.at(-1)?.details?.reason), /JWT-SVID/);
  });
});

describe('DPoP proof replay across two servers sharing PostgreSQL', () => {
  let db: TempDatabase;
  let a: ServerProcess;
  let b: ServerProcess;
  let portA: number;
  let portB: number;
  let signingKey: KeyObject;
  // Both serve the same issuer (as behind one load balancer); the proofs name its token endpoint.
  const ISSUER = 'https://sts.example.org';

  before(async () => {
    let jwksFile: string;
    ({ jwksFile, signingKey } = testIssuer());
    db = await createTempDatabase();
    const config = (port: number) => ({
      public_listen: `127.0.0.1:${port}`,
      jwt: { issuer: ISSUER },
      sts: {
        issuers: [{ issuer: GITHUB_ISSUER, jwks_file: jwksFile, audiences: [GH_AUD] }],
        policies: [octoApi],
      },
    });
    portA = await freePort();
    a = await startServer({ datastoreUrl: db.url, config: config(portA) });
    portB = await freePort();
    b = await startServer({ datastoreUrl: db.url, config: config(portB) });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await db?.drop();
  });

  it('a proof used at one server is refused at the other', async () => {
    const form = async () =>
      new URLSearchParams({
        grant_type: GRANT,
        subject_token: await new jose.SignJWT({
          ...githubClaims(),
          iat: now() - 10,
          nbf: now() - 10,
          exp: now() + 300,
        })
          .setProtectedHeader({ alg: 'ES256', kid: 'gh-1', typ: 'JWT' })
          .sign(signingKey),
        subject_token_type: JWT_TYPE,
        requested_token_type: AT_TYPE,
        audience: API_AUD,
      }).toString();
    const send = async (port: number, dpop: string) => {
      const res = await fetch(`http://127.0.0.1:${port}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', dpop },
        body: await form(),
      });
      return { status: res.status, json: (await res.json()) as Record<string, unknown> };
    };
    const p = await proof(ecKey(), `${ISSUER}/token`);
    const first = await send(portA, p);
    assert.equal(first.status, 200, JSON.stringify(first.json));
    assert.equal(first.json.token_type, 'DPoP');
    const replay = await send(portB, p);
    assert.equal(replay.status, 400);
    assert.equal(replay.json.error, 'invalid_dpop_proof');
    const denied = (
      await adminClients(b.adminSocket).audit.listAuditRecords({
        action: 'sts.exchange',
        limit: 100,
      })
    ).records.filter((r) => r.outcome === 'denied');
    assert.match(String(denied.at(-1)?.details?.reason), /replayed proof/);
  });
});
