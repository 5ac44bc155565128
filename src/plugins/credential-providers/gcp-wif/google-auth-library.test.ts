// Cross-check of the request shapes against Google's own client: google-auth-library's
// IdentityPoolClient (external_account, a subject token supplier) is pointed at the same stand-ins
// and its STS and generateAccessToken requests are compared with gcp-wif's, field for field.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { IdentityPoolClient } from 'google-auth-library';
import { createCredentialProvider } from '../catalog.ts';
import { deps, record, request, testClient } from '../testing/fakes.ts';
import { type GoogleStandIn, startGoogleStandIn } from '../testing/google-sts-stand-in.ts';
import type { StandInRequest } from '../testing/stand-in-server.ts';
import { type TesseraIssuer, startTesseraIssuer } from '../testing/tessera-issuer.ts';

const PROVIDER =
  '//iam.googleapis.com/projects/42/locations/global/workloadIdentityPools/tessera/providers/td-provider';
const SA = 'reader@proj.iam.gserviceaccount.com';
const WEB = testClient.spiffeId;

let issuer: TesseraIssuer;
let google: GoogleStandIn;

before(async () => {
  issuer = await startTesseraIssuer();
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

/** What must be equal: method, path, content type, form keys in order and values but the token. */
function shape(r: StandInRequest | undefined) {
  const type = String(r?.headers['content-type'] ?? '').toLowerCase();
  const body = type.startsWith('application/json')
    ? JSON.parse(r?.body ?? '{}')
    : [...new URLSearchParams(r?.body)].map(([k, v]) => [k, k === 'subject_token' ? '…' : v]);
  return {
    method: r?.method,
    path: r?.path,
    type,
    bearer: /^Bearer ./.test(r?.headers.authorization ?? ''),
    body,
  };
}

async function both(impersonate: boolean) {
  const svid = await issuer.jwtSvid(WEB, [`https:${PROVIDER}`], 300);
  const n = google.requests.length;
  const library = new IdentityPoolClient({
    type: 'external_account',
    audience: PROVIDER,
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    token_url: `${google.url}/v1/token`,
    subject_token_supplier: { getSubjectToken: async () => svid.token },
    ...(impersonate
      ? {
          service_account_impersonation_url: `${google.url}/v1/projects/-/serviceAccounts/${SA}:generateAccessToken`,
        }
      : {}),
  });
  const theirs = await library.getAccessToken();
  assert.ok(theirs.token);
  const libraryRequests = google.requests.slice(n).map(shape);
  const m = google.requests.length;
  await createCredentialProvider(
    record('gcp-wif', {
      project_number: '42',
      pool_id: 'tessera',
      provider_id: 'td-provider',
      sts_endpoint: `${google.url}/v1/token`,
      iam_credentials_endpoint: google.url,
      ...(impersonate ? { service_account: SA } : {}),
    }),
    deps({ minting: issuer }),
  ).release(request());
  return { libraryRequests, ours: google.requests.slice(m).map(shape) };
}

describe('gcp-wif requests match google-auth-library 10', () => {
  it('STS token exchange', async () => {
    const { libraryRequests, ours } = await both(false);
    assert.equal(ours.length, 1);
    assert.deepEqual(ours, libraryRequests);
  });

  it('STS, then generateAccessToken on the service account', async () => {
    const { libraryRequests, ours } = await both(true);
    assert.equal(ours.length, 2);
    assert.deepEqual(ours, libraryRequests);
  });
});
