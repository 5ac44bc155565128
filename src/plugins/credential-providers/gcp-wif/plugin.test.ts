// gcp-wif against stand-ins of Google's STS and IAM Credentials that, like Google, trust the
// JWT-SVID only through Tessera's OIDC discovery document and JWKS.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../../core/clock.ts';
import { createCredentialProvider } from '../catalog.ts';
import type { CredentialProvider } from '../credential-provider.ts';
import { deps, record, request, testClient } from '../testing/fakes.ts';
import { type GoogleStandIn, startGoogleStandIn } from '../testing/google-sts-stand-in.ts';
import { type Misbehaviour, closedUrl } from '../testing/stand-in-server.ts';
import {
  foreignMinting,
  startTesseraIssuer,
  type TesseraIssuer,
} from '../testing/tessera-issuer.ts';
import { decodeJwt } from 'jose';

const PROVIDER =
  '//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/tessera/providers/example-org';
const SA = 'orders-reader@orders-prod.iam.gserviceaccount.com';
const WEB = testClient.spiffeId;
const OTHER = 'spiffe://example.org/ns/dev/sa/web';

let issuer: TesseraIssuer;
let google: GoogleStandIn;

before(async () => {
  issuer = await startTesseraIssuer({ keyType: 'rsa-2048' });
  google = await startGoogleStandIn({
    provider: PROVIDER,
    issuer: issuer.issuer,
    impersonation: { [SA]: [WEB] },
  });
});
after(async () => {
  await google.close();
  await issuer.close();
});

const provider = (config: Record<string, unknown> = {}, over: Parameters<typeof deps>[0] = {}) =>
  createCredentialProvider(
    record(
      'gcp-wif',
      {
        project_number: '123456789',
        pool_id: 'tessera',
        provider_id: 'example-org',
        sts_endpoint: `${google.url}/v1/token`,
        iam_credentials_endpoint: google.url,
        ...config,
      },
      'orders-gcp',
    ),
    deps({ minting: issuer, ...over }),
  );

const as = (spiffeId: string) => request({ client: { ...testClient, spiffeId } });
const tokenOf = (c: Awaited<ReturnType<CredentialProvider['release']>>) =>
  c.value.kind === 'token' ? c.value.token : assert.fail('not a token');

async function refused(p: CredentialProvider, message: string, spiffeId = WEB) {
  const err = await p.release(as(spiffeId)).then(
    () => assert.fail('expected a refusal'),
    (e: unknown) => e as Error,
  );
  assert.equal(err.name, 'UnavailableError');
  assert.equal(err.message, message);
  assert.doesNotMatch(err.message, /eyJ|ya29/, 'no token in the message');
}

describe('gcp-wif', () => {
  it('exchanges the JWT-SVID at STS exactly as google-auth-library does', async () => {
    const before = Date.now();
    const c = await provider({
      scopes: ['https://www.googleapis.com/auth/devstorage.read_only'],
    }).release(as(WEB));
    const token = tokenOf(c);
    assert.equal(google.federated.get(token), WEB, 'the federated token of the pool subject');
    assert.ok(c.expiresAt !== null && c.expiresAt >= before + 3_600_000);
    const req = google.requests.at(-1);
    assert.equal(req?.path, '/v1/token');
    assert.equal(req?.headers['content-type'], 'application/x-www-form-urlencoded;charset=UTF-8');
    assert.equal(req?.headers.authorization, undefined, 'no Authorization header to STS');
    const f = new URLSearchParams(req?.body);
    assert.deepEqual(
      [...f.keys()],
      [
        'grant_type',
        'audience',
        'scope',
        'requested_token_type',
        'subject_token',
        'subject_token_type',
      ],
    );
    assert.equal(f.get('grant_type'), 'urn:ietf:params:oauth:grant-type:token-exchange');
    assert.equal(f.get('audience'), PROVIDER);
    assert.equal(f.get('scope'), 'https://www.googleapis.com/auth/devstorage.read_only');
    assert.equal(f.get('requested_token_type'), 'urn:ietf:params:oauth:token-type:access_token');
    assert.equal(f.get('subject_token_type'), 'urn:ietf:params:oauth:token-type:jwt');
    const claims = decodeJwt(f.get('subject_token') ?? '');
    assert.deepEqual(claims.aud, [`https:${PROVIDER}`]);
    assert.equal(claims.sub, WEB);
    assert.equal(claims.iss, issuer.issuer);
  });

  it('impersonates the service account: STS for cloud-platform, then generateAccessToken', async () => {
    const before = google.requests.length;
    const c = await provider({
      service_account: SA,
      scopes: ['https://www.googleapis.com/auth/devstorage.read_only'],
      lifetime: '30m',
    }).release(as(WEB));
    assert.equal(google.impersonated.get(tokenOf(c)), SA);
    const [sts, gen] = google.requests.slice(before);
    assert.equal(
      new URLSearchParams(sts?.body).get('scope'),
      'https://www.googleapis.com/auth/cloud-platform',
    );
    assert.equal(gen?.path, `/v1/projects/-/serviceAccounts/${SA}:generateAccessToken`);
    assert.match(gen?.headers.authorization ?? '', /^Bearer ya29\.d\.fed-/);
    assert.equal(gen?.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(gen?.body ?? ''), {
      scope: ['https://www.googleapis.com/auth/devstorage.read_only'],
      lifetime: '1800s',
    });
    assert.ok(c.expiresAt !== null && Math.abs(c.expiresAt - (Date.now() + 1_800_000)) < 60_000);
  });

  it('an ID token of the service account with id_token_audience (generateIdToken)', async () => {
    const before = google.requests.length;
    const c = await provider({
      service_account: SA,
      id_token_audience: 'https://orders-abc123-ew.a.run.app',
    }).release(as(WEB));
    const token = tokenOf(c);
    assert.deepEqual(google.idTokens.get(token), {
      serviceAccount: SA,
      audience: 'https://orders-abc123-ew.a.run.app',
    });
    assert.equal(c.expiresAt, (decodeJwt(token).exp ?? 0) * 1000, 'expiry from the ID token');
    const gen = google.requests.slice(before)[1];
    assert.equal(gen?.path, `/v1/projects/-/serviceAccounts/${SA}:generateIdToken`);
    assert.deepEqual(JSON.parse(gen?.body ?? ''), {
      audience: 'https://orders-abc123-ew.a.run.app',
      includeEmail: true,
    });
  });

  it('one exchange per client for concurrent releases, again inside the refresh window', async () => {
    const clock = new ManualClock(Date.now());
    const p = provider({}, { now: clock.now.bind(clock) });
    const before = google.requests.length;
    const got = await Promise.all([p.release(as(WEB)), p.release(as(WEB))]);
    assert.equal(google.requests.length, before + 1);
    assert.equal(tokenOf(got[0] as never), tokenOf(got[1] as never));
    clock.advance(53 * 60_000);
    await p.release(as(WEB));
    assert.equal(google.requests.length, before + 1);
    clock.advance(2 * 60_000);
    await p.release(as(WEB));
    assert.equal(google.requests.length, before + 2);
  });

  it('refusals in each format: OAuth errors from STS, Google API errors from IAM', async () => {
    await refused(
      provider({ jwt_audience: 'something-else' }),
      `Google STS ${google.url}/v1/token refused: invalid_grant (The audience in ID Token does not match the expected audience.) (HTTP 400)`,
    );
    await refused(
      provider({}, { minting: await foreignMinting(issuer.issuer, 'rsa-2048') }),
      `Google STS ${google.url}/v1/token refused: invalid_grant (Invalid JWT signature or claims.) (HTTP 400)`,
    );
    await refused(
      provider({ pool_id: 'other-pool' }),
      `Google STS ${google.url}/v1/token refused: invalid_target (The target service indicated by the "audience" parameters is invalid.) (HTTP 400)`,
    );
    await refused(
      provider({ service_account: SA }),
      `Google IAM Credentials ${google.url}/v1/projects/-/serviceAccounts/${SA}:generateAccessToken refused: PERMISSION_DENIED (Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).) (HTTP 403)`,
      OTHER,
    );
    await refused(
      provider({ service_account: SA, lifetime: '2h' }),
      `Google IAM Credentials ${google.url}/v1/projects/-/serviceAccounts/${SA}:generateAccessToken refused: INVALID_ARGUMENT (The lifetime must be at most 3600s.) (HTTP 400)`,
    );
    issuer.failJwks = true;
    try {
      await refused(
        provider(),
        `Google STS ${google.url}/v1/token refused: invalid_grant (Unable to fetch the public keys from the OIDC issuer.) (HTTP 400)`,
      );
    } finally {
      issuer.failJwks = false;
    }
  });

  it('garbage, oversized, slow, redirecting and unreachable endpoints', async () => {
    const where = `Google STS ${google.url}/v1/token`;
    const cases: Array<[Misbehaviour, string]> = [
      ['garbage', `${where}: HTTP 502`],
      ['oversized', `${where}: response larger than 65536 bytes`],
      ['slow', `${where}: cannot reach it: no answer within 300 ms`],
      ['redirect', `${where}: answered with a redirect (HTTP 307)`],
    ];
    try {
      for (const [mode, message] of cases) {
        google.misbehave = mode;
        await refused(provider({ timeout_ms: mode === 'slow' ? 300 : 10_000 }), message);
      }
    } finally {
      google.misbehave = 'none';
    }
    const down = await closedUrl();
    await refused(
      provider({ sts_endpoint: `${down}/v1/token` }),
      `Google STS ${down}/v1/token: cannot reach it: ECONNREFUSED`,
    );
  });
});
