// Black-box: issuers and trust policies managed through the admin API (tessera.v1.StsService) on
// two server processes sharing one PostgreSQL. A change on one server reaches the other within
// sts.reload_interval; the discovery issuer is a local HTTPS OIDC issuer with rotating keys.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient } from '@connectrpc/connect';
import { StsService } from '../proto/gen/tessera/v1/sts_pb.js';
import { adminSocketTransport } from '../src/client/server-transport.ts';
import { githubClaims } from '../src/server/sts/policy/claims-fixtures.ts';
import { adminClients } from './helpers/admin.ts';
import { freePort, waitFor } from './helpers/ports.ts';
import { createTempDatabase, type TempDatabase } from './helpers/postgres.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';
import {
  AT_TYPE,
  GRANT,
  JWT_TYPE,
  startDiscoveryIssuer,
  type DiscoveryIssuer,
} from './helpers/test-oidc-issuer.ts';

const AUD = 'tessera-sts';

describe('STS issuers and trust policies through the admin API, two servers', () => {
  let db: TempDatabase;
  let oidc: DiscoveryIssuer;
  let a: ServerProcess;
  let b: ServerProcess;
  let urlA: string;
  let urlB: string;

  before(async () => {
    db = await createTempDatabase();
    oidc = await startDiscoveryIssuer();
    const [portA, portB] = [await freePort(), await freePort()];
    urlA = `http://127.0.0.1:${portA}`;
    urlB = `http://127.0.0.1:${portB}`;
    const sts = { ca_file: oidc.caFile, reload_interval: '200ms' };
    a = await startServer({
      datastoreUrl: db.url,
      config: { public_listen: `127.0.0.1:${portA}`, jwt: { issuer: urlA }, sts },
    });
    b = await startServer({
      datastoreUrl: db.url,
      config: { public_listen: `127.0.0.1:${portB}`, jwt: { issuer: urlB }, sts },
    });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await oidc?.close();
    await db?.drop();
  });

  const now = () => Math.floor(Date.now() / 1000);
  const token = (header: Record<string, unknown> = {}) =>
    oidc.sign(
      { ...githubClaims(), iss: oidc.issuer, aud: AUD, iat: now() - 5, exp: now() + 300 },
      header,
    );
  const exchange = async (url: string, subjectToken: string) => {
    const res = await fetch(`${url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: GRANT,
        subject_token: subjectToken,
        subject_token_type: JWT_TYPE,
        audience: 'https://svc.example.org',
      }).toString(),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };

  it('created on A → exchanged on B; unknown kids refresh at most once; deleted on B → refused on A', async () => {
    const stsA = createClient(StsService, adminSocketTransport(a.adminSocket));
    const stsB = createClient(StsService, adminSocketTransport(b.adminSocket));
    await stsA.addIssuer({ issuer: oidc.issuer, audiences: [AUD], discovery: true });
    await stsA.createTrustPolicy({
      policy: {
        name: 'octo-ci',
        issuer: oidc.issuer,
        condition: 'assertion.repository_owner == "octo-org"',
        attributeMapping: { subject: 'assertion.sub', repository: 'assertion.repository' },
        spiffeId: 'spiffe://example.org/ci/{repository*}',
      },
    });
    const t = await token();
    assert.equal((await exchange(urlA, t)).status, 200, 'at once on A');
    // B follows within its reload interval (200 ms); bounded wait.
    await waitFor(async () => (await exchange(urlB, t)).status === 200, 5_000, 100);
    const listed = await stsB.listTrustPolicies({});
    assert.deepEqual(
      listed.policies.map((p) => [p.name, p.source]),
      [['octo-ci', 'api']],
    );

    // Twenty concurrent tokens with a made-up kid: all refused, and B fetches the JWKS at most
    // once for them (then at most once per 30 s).
    const jwksBefore = oidc.hits.get('/jwks') ?? 0;
    const forged = await token({ kid: 'made-up' });
    const results = await Promise.all(Array.from({ length: 20 }, () => exchange(urlB, forged)));
    assert.ok(results.every((r) => r.status === 400 && r.json.error === 'invalid_grant'));
    assert.ok((oidc.hits.get('/jwks') ?? 0) - jwksBefore <= 1);

    await stsB.deleteTrustPolicy({ name: 'octo-ci' });
    assert.equal((await exchange(urlB, t)).status, 400, 'at once on B');
    await waitFor(async () => (await exchange(urlA, t)).status === 400, 5_000, 100);
    await stsB.removeIssuer({ issuer: oidc.issuer });

    const audit = adminClients(a.adminSocket).audit;
    const changes = [];
    for (const action of [
      'sts.issuer.add',
      'sts.policy.create',
      'sts.policy.delete',
      'sts.issuer.remove',
    ]) {
      const { records } = await audit.listAuditRecords({ action, limit: 10 });
      changes.push(...records.map((r) => `${r.action} ${r.target} ${r.outcome} ${r.actor}`));
    }
    assert.deepEqual(changes, [
      `sts.issuer.add ${oidc.issuer} success local-admin`,
      'sts.policy.create octo-ci success local-admin',
      'sts.policy.delete octo-ci success local-admin',
      `sts.issuer.remove ${oidc.issuer} success local-admin`,
    ]);
    const { records } = await audit.listAuditRecords({ action: 'sts.exchange', limit: 500 });
    const ok = records.find((r) => r.outcome === 'success');
    assert.equal(ok?.details?.policy, 'octo-ci');
    assert.equal(ok?.details?.issuer, oidc.issuer);
  });

  it('an API policy that requires DPoP refuses Bearer requests on every server', async () => {
    const stsA = createClient(StsService, adminSocketTransport(a.adminSocket));
    const stsB = createClient(StsService, adminSocketTransport(b.adminSocket));
    await stsA.addIssuer({ issuer: oidc.issuer, audiences: [AUD], discovery: true });
    await stsA.createTrustPolicy({
      policy: {
        name: 'octo-api',
        issuer: oidc.issuer,
        condition: 'assertion.repository_owner == "octo-org"',
        attributeMapping: { subject: 'assertion.sub' },
        accessTokenAudience: 'https://api.example.org',
        scopes: ['read'],
        requireDpop: true,
      },
    });
    const bearer = async (url: string) => {
      const res = await fetch(`${url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: GRANT,
          subject_token: await token(),
          subject_token_type: JWT_TYPE,
          requested_token_type: AT_TYPE,
          audience: 'https://api.example.org',
        }).toString(),
      });
      return { status: res.status, json: (await res.json()) as Record<string, unknown> };
    };
    // B knows the policy only from the datastore: the flag must have been stored with it.
    await waitFor(
      async () =>
        (await stsB.listTrustPolicies({})).policies.some(
          (p) => p.name === 'octo-api' && p.requireDpop,
        ),
      5_000,
      100,
    );
    for (const url of [urlA, urlB]) {
      const r = await bearer(url);
      assert.equal(r.status, 400, JSON.stringify(r.json));
      assert.equal(r.json.error, 'invalid_dpop_proof');
      assert.equal(r.json.access_token, undefined);
    }
    await stsA.deleteTrustPolicy({ name: 'octo-api' });
    await stsA.removeIssuer({ issuer: oidc.issuer });
  });

  it('an API policy can be an introspection client; others may not introspect', async () => {
    const stsA = createClient(StsService, adminSocketTransport(a.adminSocket));
    await stsA.addIssuer({ issuer: oidc.issuer, audiences: [AUD], discovery: true });
    const policy = (name: string, introspectionClient: boolean) => ({
      policy: {
        name,
        issuer: oidc.issuer,
        condition: 'assertion.repository_owner == "octo-org"',
        attributeMapping: { subject: 'assertion.sub' },
        accessTokenAudience: `https://${name}.example.org`,
        introspectionClient,
      },
    });
    await stsA.createTrustPolicy(policy('gateway', true));
    await stsA.createTrustPolicy(policy('plain', false));
    const accessToken = async (name: string) => {
      const res = await fetch(`${urlA}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: GRANT,
          subject_token: await token(),
          subject_token_type: JWT_TYPE,
          requested_token_type: AT_TYPE,
          audience: `https://${name}.example.org`,
        }).toString(),
      });
      const json = (await res.json()) as { access_token?: string };
      assert.ok(json.access_token, JSON.stringify(json));
      return json.access_token;
    };
    const [gateway, plain] = [await accessToken('gateway'), await accessToken('plain')];
    const introspect = (caller: string) =>
      fetch(`${urlA}/introspect`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Bearer ${caller}`,
        },
        body: new URLSearchParams({ token: plain }).toString(),
      });
    const allowed = await introspect(gateway);
    assert.equal(allowed.status, 200);
    assert.equal(((await allowed.json()) as { active: boolean }).active, true);
    assert.equal((await introspect(plain)).status, 403);
    await stsA.deleteTrustPolicy({ name: 'gateway' });
    await stsA.deleteTrustPolicy({ name: 'plain' });
    await stsA.removeIssuer({ issuer: oidc.issuer });
  });
});
