// azure-federated against a stand-in of Entra ID's token endpoint that, like Entra, trusts the
// JWT-SVID only through a federated identity credential (issuer, subject, audience) and the
// issuer's OIDC discovery document and JWKS, and only RS256.
import assert from 'node:assert/strict';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../../core/clock.ts';
import { createCredentialProvider } from '../catalog.ts';
import type { CredentialProvider } from '../credential-provider.ts';
import { type EntraStandIn, startEntraStandIn } from '../testing/entra-stand-in.ts';
import { deps, record, request, testClient } from '../testing/fakes.ts';
import { type Misbehaviour, closedUrl } from '../testing/stand-in-server.ts';
import { type TesseraIssuer, startTesseraIssuer } from '../testing/tessera-issuer.ts';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT_ID = '0b6c9a4e-1f2d-4c3b-8a7e-9d5f6e4c3b2a';
const SCOPE = 'https://storage.azure.com/.default';
const WEB = testClient.spiffeId;
const OTHER = 'spiffe://example.org/ns/dev/sa/web';

let issuer: TesseraIssuer;
let entra: EntraStandIn;

before(async () => {
  issuer = await startTesseraIssuer({ keyType: 'rsa-2048' });
  entra = await startEntraStandIn({
    tenantId: TENANT,
    clientId: CLIENT_ID,
    federated: [{ issuer: issuer.issuer, subject: WEB, audience: 'api://AzureADTokenExchange' }],
  });
});
after(async () => {
  await entra.close();
  await issuer.close();
});

const provider = (config: Record<string, unknown> = {}, over: Parameters<typeof deps>[0] = {}) =>
  createCredentialProvider(
    record(
      'azure-federated',
      {
        tenant_id: TENANT,
        client_id: CLIENT_ID,
        scope: SCOPE,
        authority_host: entra.url,
        ...config,
      },
      'orders-azure',
    ),
    deps({ minting: issuer, ...over }),
  );

const as = (spiffeId: string) => request({ client: { ...testClient, spiffeId } });
const tokenOf = (c: Awaited<ReturnType<CredentialProvider['release']>>) =>
  c.value.kind === 'token' ? c.value.token : assert.fail('not a token');
const where = () => `Entra ID token endpoint ${entra.url}/${TENANT}/oauth2/v2.0/token`;

async function refused(p: CredentialProvider, message: string | RegExp, spiffeId = WEB) {
  const err = await p.release(as(spiffeId)).then(
    () => assert.fail('expected a refusal'),
    (e: unknown) => e as Error,
  );
  assert.equal(err.name, 'UnavailableError');
  if (typeof message === 'string') assert.equal(err.message, message);
  else assert.match(err.message, message);
  assert.doesNotMatch(err.message, /eyJ/, 'no assertion in the message');
}

describe('azure-federated', () => {
  it('client credentials with the JWT-SVID as client assertion, as MSAL sends them', async () => {
    const before = Date.now();
    const c = await provider().release(as(WEB));
    assert.deepEqual(entra.issued.get(tokenOf(c)), { subject: WEB, scope: SCOPE });
    assert.ok(c.expiresAt !== null && c.expiresAt >= before + 3_599_000);
    assert.equal(c.leaseId, '');
    const req = entra.requests.at(-1);
    assert.equal(req?.path, `/${TENANT}/oauth2/v2.0/token`);
    assert.match(req?.headers['content-type'] ?? '', /^application\/x-www-form-urlencoded/);
    const f = new URLSearchParams(req?.body);
    assert.deepEqual(Object.fromEntries([...f].filter(([k]) => k !== 'client_assertion')), {
      client_id: CLIENT_ID,
      scope: SCOPE,
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    });
    const assertion = f.get('client_assertion') ?? '';
    assert.equal(decodeProtectedHeader(assertion).alg, 'RS256');
    const claims = decodeJwt(assertion);
    assert.deepEqual(claims.aud, ['api://AzureADTokenExchange']);
    assert.equal(claims.sub, WEB);
    assert.equal(claims.iss, issuer.issuer);
  });

  it('one token request per client for concurrent releases, again inside the refresh window', async () => {
    const clock = new ManualClock(Date.now());
    const p = provider({}, { now: clock.now.bind(clock) });
    const before = entra.requests.length;
    const [a, b] = await Promise.all([p.release(as(WEB)), p.release(as(WEB))]);
    assert.equal(tokenOf(a), tokenOf(b));
    assert.equal(entra.requests.length, before + 1);
    clock.advance(53 * 60_000);
    await p.release(as(WEB));
    assert.equal(entra.requests.length, before + 1);
    clock.advance(2 * 60_000);
    assert.notEqual(tokenOf(await p.release(as(WEB))), tokenOf(a));
    assert.equal(entra.requests.length, before + 2);
  });

  it('Entra refusals are reported by error and AADSTS description', async () => {
    await refused(
      provider(),
      new RegExp(
        `^${escape(where())} refused: invalid_client \\(AADSTS700213: No matching federated identity record found for presented assertion subject '${escape(OTHER)}'\\. .*\\(HTTP 401\\)$`,
      ),
      OTHER,
    );
    await refused(
      provider({ audience: 'api://something-else' }),
      new RegExp(
        `^${escape(where())} refused: invalid_client \\(AADSTS700213: The audience of the client assertion does not match`,
      ),
    );
    await refused(
      provider({ client_id: '00000000-0000-0000-0000-000000000000' }),
      new RegExp(
        `^${escape(where())} refused: unauthorized_client \\(AADSTS700016: Application with identifier '00000000-0000-0000-0000-000000000000' was not found`,
      ),
    );
    const ec = await startTesseraIssuer({ keyType: 'ec-p256' });
    const ecEntra = await startEntraStandIn({
      tenantId: TENANT,
      clientId: CLIENT_ID,
      federated: [{ issuer: ec.issuer, subject: WEB, audience: 'api://AzureADTokenExchange' }],
    });
    try {
      await refused(
        provider({ authority_host: ecEntra.url }, { minting: ec }),
        /refused: invalid_client \(AADSTS700213: Client assertion failed signature validation\./,
      );
    } finally {
      await ecEntra.close();
      await ec.close();
    }
    issuer.failJwks = true;
    try {
      await refused(provider(), /AADSTS700213: Unable to retrieve the signing keys of issuer/);
    } finally {
      issuer.failJwks = false;
    }
  });

  it('garbage, oversized, slow, redirecting and unreachable endpoints', async () => {
    const cases: Array<[Misbehaviour, string]> = [
      ['garbage', `${where()}: HTTP 503`],
      ['oversized', `${where()}: response larger than 65536 bytes`],
      ['slow', `${where()}: cannot reach it: no answer within 300 ms`],
      ['redirect', `${where()}: answered with a redirect (HTTP 307)`],
    ];
    try {
      for (const [mode, message] of cases) {
        entra.misbehave = mode;
        await refused(provider({ timeout_ms: mode === 'slow' ? 300 : 10_000 }), message);
      }
    } finally {
      entra.misbehave = 'none';
    }
    const down = await closedUrl();
    await refused(
      provider({ authority_host: down }),
      `Entra ID token endpoint ${down}/${TENANT}/oauth2/v2.0/token: cannot reach it: ECONNREFUSED`,
    );
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
