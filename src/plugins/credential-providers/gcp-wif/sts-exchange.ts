// Google Security Token Service token exchange (RFC 8693 profile), as google-auth-library sends
// it: a form POST without an Authorization header, the client's JWT-SVID as subject token of type
// `urn:ietf:params:oauth:token-type:jwt`, the workload identity pool provider as audience. The
// answer is JSON {access_token, issued_token_type, token_type, expires_in}; errors are OAuth
// error JSON {error, error_description}, reported by code and description, naming the endpoint.
import { UnavailableError } from '../../../core/errors.ts';
import { type ExpiringToken, expiresInSeconds, oauthRefusal } from '../shared/oauth-answer.ts';
import { jsonObject, postUpstream } from '../shared/upstream-http.ts';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

export interface ExchangeRequest {
  readonly url: string;
  /** `//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/Q`. */
  readonly audience: string;
  readonly scopes: readonly string[];
  readonly subjectToken: string;
  readonly timeoutMs: number;
  readonly now: number;
  readonly fetch: typeof fetch;
}

export async function exchangeToken(r: ExchangeRequest): Promise<ExpiringToken> {
  const where = `Google STS ${r.url}`;
  const form = new URLSearchParams({
    grant_type: TOKEN_EXCHANGE_GRANT,
    audience: r.audience,
    scope: r.scopes.join(' '),
    requested_token_type: ACCESS_TOKEN_TYPE,
    subject_token: r.subjectToken,
    subject_token_type: JWT_TOKEN_TYPE,
  });
  const res = await postUpstream({
    url: r.url,
    where,
    headers: {
      'content-type': 'application/x-www-form-urlencoded;charset=UTF-8',
      accept: 'application/json',
    },
    body: form.toString(),
    timeoutMs: r.timeoutMs,
    fetch: r.fetch,
  });
  if (!res.ok) throw oauthRefusal(where, res.status, res.text);
  const body = jsonObject(res.text);
  if (body === null) throw new UnavailableError(`${where}: the answer is not a JSON object`);
  const token = body.access_token;
  if (typeof token !== 'string' || token === '')
    throw new UnavailableError(`${where}: the answer has no access_token`);
  // Without expires_in a token could be cached forever; Google always sends it for JWT subjects.
  const expiresIn = expiresInSeconds(body.expires_in);
  if (expiresIn === null) throw new UnavailableError(`${where}: the answer has no expires_in`);
  return { token, expiresAt: r.now + expiresIn * 1000 };
}
