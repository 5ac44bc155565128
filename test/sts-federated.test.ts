// Black-box: JWT-SVIDs of a federated trust domain as RFC 8693 subject tokens. The partner's
// bundle is put into the server's PostgreSQL store (as federation would); the server verifies the
// JWT-SVID with that bundle's JWT keys under a pseudo-issuer `spiffe://partner.org`.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as jose from 'jose';
import { emptyBundle, withJwtAuthority, type Bundle } from '../src/core/bundle.ts';
import { openStore } from '../src/store/open.ts';
import type { Store } from '../src/store/types.ts';
import { createClient } from '@connectrpc/connect';
import { StsService } from '../proto/gen/tessera/v1/sts_pb.js';
import { adminSocketTransport } from '../src/client/server-transport.ts';
import { adminClients } from './helpers/admin.ts';
import { freePort } from './helpers/ports.ts';
import { createTempDatabase, type TempDatabase } from './helpers/postgres.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';
import { AT_TYPE, GRANT, JWT_TYPE } from './helpers/test-oidc-issuer.ts';

const STS_AUD = 'https://sts.example.org';
const API_AUD = 'https://api.example.org';
const now = () => Math.floor(Date.now() / 1000);
const spki = (k: KeyObject) => new Uint8Array(k.export({ format: 'der', type: 'spki' }));

describe('federated JWT-SVIDs as subject tokens', () => {
  let db: TempDatabase;
  let store: Store;
  let server: ServerProcess;
  let issuer: string;
  const k1 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const k2 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  let bundle: Bundle;

  before(async () => {
    db = await createTempDatabase();
    store = await openStore({ kind: 'postgres', url: db.url, poolSize: 2 });
    bundle = withJwtAuthority(
      { ...emptyBundle('partner.org'), sequence: 1 },
      { kid: 'p-1', publicKeyDer: spki(k1.publicKey), expiresAt: 0 },
    );
    await store.bundles.put(bundle);
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    server = await startServer({
      datastoreUrl: db.url,
      config: {
        public_listen: `127.0.0.1:${port}`,
        jwt: { issuer },
        sts: {
          issuers: [
            { issuer: 'spiffe://partner.org', audiences: [STS_AUD] },
            { issuer: 'spiffe://nobundle.org', audiences: [STS_AUD] },
          ],
          policies: [
            {
              name: 'partner-prod',
              issuer: 'spiffe://partner.org',
              condition: 'assertion.sub.startsWith("spiffe://partner.org/ns/prod/")',
              attribute_mapping: { subject: 'assertion.sub' },
              access_token: { audience: API_AUD, scopes: ['read'] },
              ttl: '5m',
            },
          ],
          federated_bundle_max_staleness: '1s',
        },
      },
    });
  });
  after(async () => {
    await server?.stop();
    await store?.close();
    await db?.drop();
  });

  const svid = (key: KeyObject, kid: string, over: Record<string, unknown> = {}): Promise<string> =>
    new jose.SignJWT({
      sub: 'spiffe://partner.org/ns/prod/sa/api',
      aud: [STS_AUD],
      iat: now() - 5,
      exp: now() + 300,
      ...over,
    })
      .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
      .sign(key);
  const exchange = async (token: string) => {
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: GRANT,
        subject_token: token,
        subject_token_type: JWT_TYPE,
        requested_token_type: AT_TYPE,
        audience: API_AUD,
      }).toString(),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const audits = async () =>
    (
      await adminClients(server.adminSocket).audit.listAuditRecords({
        action: 'sts.exchange',
        limit: 500,
      })
    ).records;

  it('a JWT-SVID of partner.org is admitted by its policy', async () => {
    const r = await exchange(await svid(k1.privateKey, 'p-1'));
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const { payload } = await jose.jwtVerify(
      String(r.json.access_token),
      jose.createRemoteJWKSet(new URL(`${issuer}/keys`)),
      { issuer, audience: API_AUD, typ: 'at+jwt' },
    );
    assert.equal(payload.sub, 'spiffe://partner.org/ns/prod/sa/api');
    assert.equal(payload.client_id, 'partner-prod');
    const ok = (await audits()).filter((a) => a.outcome === 'success').at(-1);
    assert.equal(ok?.details?.issuer, 'spiffe://partner.org');
    assert.equal(ok?.details?.policy, 'partner-prod');
  });

  it('the policy dry run checks a federated JWT-SVID as the exchange does', async () => {
    const sts = createClient(StsService, adminSocketTransport(server.adminSocket));
    const allow = await sts.testTrustPolicy({
      policyName: 'partner-prod',
      token: await svid(k1.privateKey, 'p-1'),
    });
    assert.equal(allow.decision, 'allow', allow.reason);
    assert.equal(allow.attributes.subject, 'spiffe://partner.org/ns/prod/sa/api');
    const denied = await sts.testTrustPolicy({
      policyName: 'partner-prod',
      token: await svid(k2.privateKey, 'p-2'),
    });
    assert.equal(denied.decision, 'deny');
    assert.equal(denied.failing, 'token');
    assert.match(denied.reason, /unknown kid/);
  });

  const refusals: Array<[string, () => Promise<string>, RegExp]> = [
    ['unknown kid', () => svid(k2.privateKey, 'p-2'), /unknown kid/],
    ['known kid, signed by another key', () => svid(k2.privateKey, 'p-1'), /signature/],
    [
      'a trust domain without a bundle',
      () => svid(k1.privateKey, 'p-1', { sub: 'spiffe://nobundle.org/x' }),
      /no bundle for trust domain "nobundle.org"/,
    ],
    [
      'a trust domain without an sts.issuers entry',
      () => svid(k1.privateKey, 'p-1', { sub: 'spiffe://other.org/x' }),
      /no sts.issuers entry/,
    ],
    ['a foreign audience', () => svid(k1.privateKey, 'p-1', { aud: ['x'] }), /audience/],
    ['expired', () => svid(k1.privateKey, 'p-1', { exp: now() - 300 }), /expired/],
    [
      'alg none',
      async () => {
        const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
        return `${b64({ alg: 'none', kid: 'p-1' })}.${b64({ sub: 'spiffe://partner.org/ns/prod/a', aud: [STS_AUD], exp: now() + 60 })}.x`;
      },
      /"none"/,
    ],
    [
      'the policy condition fails',
      () => svid(k1.privateKey, 'p-1', { sub: 'spiffe://partner.org/ns/dev/sa/api' }),
      /partner-prod: condition/,
    ],
  ];
  for (const [name, token, reason] of refusals) {
    it(`refused: ${name}`, async () => {
      const before = await audits();
      const r = await exchange(await token());
      assert.equal(r.status, 400, JSON.stringify(r.json));
      assert.equal(r.json.error, 'invalid_grant');
      assert.equal(r.json.access_token, undefined);
      const after = await audits();
      const n = (l: typeof after, o: string) => l.filter((a) => a.outcome === o).length;
      assert.equal(n(after, 'success'), n(before, 'success'), 'nothing issued');
      assert.equal(n(after, 'denied'), n(before, 'denied') + 1, 'audited');
      assert.match(String(after.at(-1)?.details?.reason), reason);
    });
  }

  it('refused: a JWT-SVID of our own trust domain', async () => {
    const { token } = await adminClients(server.adminSocket).svids.mintJWTSVID({
      spiffeId: 'spiffe://example.org/workload',
      audience: [STS_AUD],
    });
    const r = await exchange(token);
    assert.equal(r.status, 400);
    assert.equal(r.json.error, 'invalid_grant');
    assert.match(String((await audits()).at(-1)?.details?.reason), /own trust domain/);
  });

  it('a rotated bundle is used within the staleness bound', async () => {
    const token = await svid(k2.privateKey, 'p-2', { jti: randomBytes(8).toString('hex') });
    assert.equal((await exchange(token)).status, 400, 'p-2 is not in the bundle yet');
    await store.bundles.put(
      withJwtAuthority(
        { ...bundle, sequence: 2 },
        { kid: 'p-2', publicKeyDer: spki(k2.publicKey), expiresAt: 0 },
      ),
    );
    await new Promise((r) => setTimeout(r, 1100));
    const r = await exchange(token);
    assert.equal(r.status, 200, JSON.stringify(r.json));
  });
});
