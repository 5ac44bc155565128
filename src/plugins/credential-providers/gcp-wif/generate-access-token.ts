// IAM Service Account Credentials generateAccessToken: the federated token (Bearer) buys an
// access token of a service account the pool's principal may impersonate
// (roles/iam.workloadIdentityUser). JSON in, JSON out: {scope: [...], lifetime: "3600s"} →
// {accessToken, expireTime (RFC 3339)}. Errors are Google API errors
// {error: {code, message, status}}, reported by status and message.
import { UnavailableError } from '../../../core/errors.ts';
import { joinUrl } from '../shared/endpoint-url.ts';
import { cleanText, jsonObject, postUpstream } from '../shared/upstream-http.ts';
import type { ExpiringToken } from '../shared/oauth-answer.ts';

export interface ImpersonationRequest {
  /** `https://iamcredentials.googleapis.com` or a stand-in. */
  readonly endpoint: string;
  readonly serviceAccount: string;
  readonly federatedToken: string;
  readonly scopes: readonly string[];
  readonly lifetimeSeconds: number;
  readonly timeoutMs: number;
  readonly now: number;
  readonly fetch: typeof fetch;
}

/** The email is literal in the path, as Google documents it (the schema allows no reserved characters). */
export const generateAccessTokenUrl = (endpoint: string, serviceAccount: string): string =>
  joinUrl(endpoint, `/v1/projects/-/serviceAccounts/${serviceAccount}:generateAccessToken`);

function googleRefusal(where: string, status: number, text: string): UnavailableError {
  const err = jsonObject(text)?.error;
  const e = err !== null && typeof err === 'object' ? (err as Record<string, unknown>) : null;
  const code = cleanText(e?.status, 100);
  if (code === '') return new UnavailableError(`${where}: HTTP ${status}`);
  const message = cleanText(e?.message, 300);
  return new UnavailableError(
    `${where} refused: ${code}${message === '' ? '' : ` (${message})`} (HTTP ${status})`,
  );
}

export async function generateAccessToken(r: ImpersonationRequest): Promise<ExpiringToken> {
  const url = generateAccessTokenUrl(r.endpoint, r.serviceAccount);
  const where = `Google IAM Credentials ${url}`;
  const res = await postUpstream({
    url,
    where,
    headers: {
      'content-type': 'application/json',
      accept: 'application/json',
      authorization: `Bearer ${r.federatedToken}`,
    },
    body: JSON.stringify({ scope: [...r.scopes], lifetime: `${r.lifetimeSeconds}s` }),
    timeoutMs: r.timeoutMs,
    fetch: r.fetch,
  });
  if (!res.ok) throw googleRefusal(where, res.status, res.text);
  const body = jsonObject(res.text);
  if (body === null) throw new UnavailableError(`${where}: the answer is not a JSON object`);
  const token = body.accessToken;
  if (typeof token !== 'string' || token === '')
    throw new UnavailableError(`${where}: the answer has no accessToken`);
  const expireTime = typeof body.expireTime === 'string' ? body.expireTime : '';
  const expiresAt = Date.parse(expireTime);
  if (!/^\d{4}-\d\d-\d\dT/.test(expireTime) || !Number.isFinite(expiresAt))
    throw new UnavailableError(`${where}: the answer has no valid expireTime`);
  if (expiresAt <= r.now)
    throw new UnavailableError(`${where}: the token it returned has already expired`);
  return { token, expiresAt };
}
