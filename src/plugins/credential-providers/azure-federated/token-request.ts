// Microsoft Entra ID client-credentials grant with a federated client assertion, as MSAL sends it
// for workload identity: POST <authority>/<tenant>/oauth2/v2.0/token, form {client_id, scope,
// grant_type=client_credentials, client_assertion_type=...jwt-bearer, client_assertion=<JWT>}.
// The answer is {token_type, expires_in, ext_expires_in, access_token}; errors are
// {error, error_description ("AADSTS700213: ..."), error_codes, ...}, reported by error and
// description, naming the endpoint — never the assertion.
import { UnavailableError } from '../../../core/errors.ts';
import { joinUrl } from '../shared/endpoint-url.ts';
import { jsonObject, postUpstream } from '../shared/upstream-http.ts';
import { type ExpiringToken, expiresInSeconds, oauthRefusal } from '../shared/oauth-answer.ts';

export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export interface EntraTokenRequest {
  readonly authorityHost: string;
  readonly tenantId: string;
  readonly clientId: string;
  readonly scope: string;
  readonly assertion: string;
  readonly timeoutMs: number;
  readonly now: number;
  readonly fetch: typeof fetch;
}

export const entraTokenUrl = (authorityHost: string, tenantId: string): string =>
  joinUrl(authorityHost, `/${encodeURIComponent(tenantId)}/oauth2/v2.0/token`);

export async function requestEntraToken(r: EntraTokenRequest): Promise<ExpiringToken> {
  const url = entraTokenUrl(r.authorityHost, r.tenantId);
  const where = `Entra ID token endpoint ${url}`;
  const form = new URLSearchParams({
    client_id: r.clientId,
    scope: r.scope,
    grant_type: 'client_credentials',
    client_assertion_type: JWT_BEARER_ASSERTION,
    client_assertion: r.assertion,
  });
  const res = await postUpstream({
    url,
    where,
    headers: { 'content-type': 'application/x-www-form-urlencoded;charset=utf-8' },
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
  const expiresIn = expiresInSeconds(body.expires_in);
  if (expiresIn === null) throw new UnavailableError(`${where}: the answer has no expires_in`);
  return { token, expiresAt: r.now + expiresIn * 1000 };
}
