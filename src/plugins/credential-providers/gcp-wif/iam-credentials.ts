// IAM Service Account Credentials: the federated token (Bearer) buys a token of a service account
// the pool's principal may impersonate (roles/iam.workloadIdentityUser). JSON in, JSON out:
// - generateAccessToken {scope: [...], lifetime: "3600s"} → {accessToken, expireTime (RFC 3339)};
// - generateIdToken {audience, includeEmail: true} → {token} (a Google-signed ID token, whose own
//   `exp` is its expiry).
// Errors are Google API errors {error: {code, message, status}}, reported by status and message.
import { UnavailableError } from '../../../core/errors.ts';
import { joinUrl } from '../shared/endpoint-url.ts';
import type { ExpiringToken } from '../shared/oauth-answer.ts';
import { cleanText, jsonObject, postUpstream } from '../shared/upstream-http.ts';

export interface ImpersonationRequest {
  /** `https://iamcredentials.googleapis.com` or a stand-in. */
  readonly endpoint: string;
  readonly serviceAccount: string;
  readonly federatedToken: string;
  readonly timeoutMs: number;
  readonly now: number;
  readonly fetch: typeof fetch;
}

type Method = 'generateAccessToken' | 'generateIdToken';

/** The email is literal in the path, as Google documents it (the schema allows no reserved characters). */
export const iamCredentialsUrl = (endpoint: string, serviceAccount: string, method: Method) =>
  joinUrl(endpoint, `/v1/projects/-/serviceAccounts/${serviceAccount}:${method}`);

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

async function call(
  r: ImpersonationRequest,
  method: Method,
  body: unknown,
): Promise<{ where: string; answer: Record<string, unknown> }> {
  const url = iamCredentialsUrl(r.endpoint, r.serviceAccount, method);
  const where = `Google IAM Credentials ${url}`;
  const res = await postUpstream({
    url,
    where,
    headers: {
      'content-type': 'application/json',
      accept: 'application/json',
      authorization: `Bearer ${r.federatedToken}`,
    },
    body: JSON.stringify(body),
    timeoutMs: r.timeoutMs,
    fetch: r.fetch,
  });
  if (!res.ok) throw googleRefusal(where, res.status, res.text);
  const answer = jsonObject(res.text);
  if (answer === null) throw new UnavailableError(`${where}: the answer is not a JSON object`);
  return { where, answer };
}

function checkExpiry(where: string, expiresAt: number, now: number): number {
  if (expiresAt <= now)
    throw new UnavailableError(`${where}: the token it returned has already expired`);
  return expiresAt;
}

export async function generateAccessToken(
  r: ImpersonationRequest & {
    readonly scopes: readonly string[];
    readonly lifetimeSeconds: number;
  },
): Promise<ExpiringToken> {
  const { where, answer } = await call(r, 'generateAccessToken', {
    scope: [...r.scopes],
    lifetime: `${r.lifetimeSeconds}s`,
  });
  const token = answer.accessToken;
  if (typeof token !== 'string' || token === '')
    throw new UnavailableError(`${where}: the answer has no accessToken`);
  const expireTime = typeof answer.expireTime === 'string' ? answer.expireTime : '';
  const expiresAt = Date.parse(expireTime);
  if (!/^\d{4}-\d\d-\d\dT/.test(expireTime) || !Number.isFinite(expiresAt))
    throw new UnavailableError(`${where}: the answer has no valid expireTime`);
  return { token, expiresAt: checkExpiry(where, expiresAt, r.now) };
}

/** The `exp` of a compact JWS, in ms; null when it has none. Not verified: it only times the cache. */
function jwtExpiry(token: string): number | null {
  const payload = token.split('.')[1];
  if (token.split('.').length !== 3 || payload === undefined) return null;
  try {
    const claims: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    const exp = (claims as { exp?: unknown } | null)?.exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null;
  } catch {
    return null;
  }
}

export async function generateIdToken(
  r: ImpersonationRequest & { readonly audience: string },
): Promise<ExpiringToken> {
  const { where, answer } = await call(r, 'generateIdToken', {
    audience: r.audience,
    includeEmail: true,
  });
  const token = answer.token;
  if (typeof token !== 'string' || token === '')
    throw new UnavailableError(`${where}: the answer has no token`);
  const expiresAt = jwtExpiry(token);
  if (expiresAt === null)
    throw new UnavailableError(`${where}: the token is not a JWT with an exp claim`);
  return { token, expiresAt: checkExpiry(where, expiresAt, r.now) };
}
