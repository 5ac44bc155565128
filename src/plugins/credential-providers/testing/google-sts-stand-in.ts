// Google Cloud's token services as documented, for tests: the Security Token Service
// (`POST /v1/token`, RFC 8693 form, OAuth error JSON) trusting one workload identity pool
// provider whose OIDC issuer is Tessera, and IAM Service Account Credentials
// (`POST /v1/projects/-/serviceAccounts/<email>:generateAccessToken|generateIdToken`, Bearer the
// federated token, JSON; Google API errors {error: {code, message, status}}) with a roles/iam.workloadIdentityUser
// binding per service account listing the pool subjects that may impersonate it.
import { randomBytes } from 'node:crypto';
import { SignJWT, generateKeyPair } from 'jose';
import { type StandIn, form, startStandIn, verifySubjectToken } from './stand-in-server.ts';

export interface GooglePool {
  /** `//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/Q`. */
  readonly provider: string;
  readonly issuer: string;
  /** allowedAudiences; empty = the provider's resource name with or without `https:`. */
  readonly allowedAudiences?: readonly string[];
  /** Service account email → the `google.subject` values (= JWT `sub`) it may be used by. */
  readonly impersonation?: Readonly<Record<string, readonly string[]>>;
}

export interface GoogleStandIn extends StandIn {
  /** Federated tokens issued: token → subject. */
  readonly federated: Map<string, string>;
  /** Service account tokens issued: token → service account. */
  readonly impersonated: Map<string, string>;
  /** Service account ID tokens issued. */
  readonly idTokens: Map<string, { serviceAccount: string; audience: string }>;
  /** `expires_in` of the federated tokens (Google: 3600; shorter makes the SDKs refresh). */
  expiresIn: number;
}

const oauthError = (status: number, error: string, description: string) => ({
  status,
  contentType: 'application/json',
  body: JSON.stringify({ error, error_description: description }),
});

const apiError = (code: number, status: string, message: string) => ({
  status: code,
  contentType: 'application/json; charset=UTF-8',
  body: JSON.stringify({ error: { code, message, status } }),
});

const json = (body: unknown) => ({
  status: 200,
  contentType: 'application/json; charset=utf-8',
  body: JSON.stringify(body),
});

const GENERATE =
  /^\/v1\/projects\/-\/serviceAccounts\/([^/:]+):(generateAccessToken|generateIdToken)$/;

export async function startGoogleStandIn(
  pool: GooglePool,
  now: () => number = Date.now,
): Promise<GoogleStandIn> {
  const federated = new Map<string, string>();
  /** Itself, once started: `expiresIn` is read at answer time (the test may shorten it). */
  const self: { current?: GoogleStandIn } = {};
  const impersonated = new Map<string, string>();
  const idTokens = new Map<string, { serviceAccount: string; audience: string }>();
  const { privateKey: idTokenKey } = await generateKeyPair('RS256');
  const audiences = pool.allowedAudiences?.length
    ? pool.allowedAudiences
    : [pool.provider, `https:${pool.provider}`];
  const standIn = await startStandIn(
    async (req) => {
      if (req.method === 'POST' && req.path === '/v1/token') {
        if (req.headers.authorization !== undefined)
          return oauthError(400, 'invalid_request', 'Authorization header is not allowed.');
        const f = form(req.body);
        if (f.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:token-exchange')
          return oauthError(400, 'unsupported_grant_type', 'Invalid grant_type.');
        if (f.get('requested_token_type') !== 'urn:ietf:params:oauth:token-type:access_token')
          return oauthError(400, 'invalid_request', 'Invalid requested_token_type.');
        if (f.get('subject_token_type') !== 'urn:ietf:params:oauth:token-type:jwt')
          return oauthError(400, 'invalid_request', 'Invalid subject_token_type.');
        if (f.get('audience') !== pool.provider)
          return oauthError(
            400,
            'invalid_target',
            'The target service indicated by the "audience" parameters is invalid.',
          );
        if ((f.get('scope') ?? '') === '')
          return oauthError(400, 'invalid_scope', 'The scope is missing.');
        const v = await verifySubjectToken(f.get('subject_token') ?? '', {
          issuer: pool.issuer,
          audiences,
          algorithms: ['RS256', 'ES256'],
        });
        if ('rejected' in v) {
          const r = v.rejected;
          const description =
            r.kind === 'jwks-unavailable'
              ? 'Unable to fetch the public keys from the OIDC issuer.'
              : r.kind === 'expired'
                ? 'The access token has expired.'
                : r.kind === 'audience'
                  ? 'The audience in ID Token does not match the expected audience.'
                  : 'Invalid JWT signature or claims.';
          return oauthError(400, 'invalid_grant', description);
        }
        const { iat = 0, exp = 0 } = v.claims;
        if (exp - iat >= 48 * 3600)
          return oauthError(400, 'invalid_grant', 'The exp claim is too far in the future.');
        const token = `ya29.d.fed-${randomBytes(24).toString('base64url')}`;
        federated.set(token, String(v.claims.sub));
        return json({
          access_token: token,
          issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
          token_type: 'Bearer',
          expires_in: self.current?.expiresIn ?? 3600,
        });
      }
      const m = req.method === 'POST' ? GENERATE.exec(req.path) : null;
      if (m) {
        const sa = decodeURIComponent(m[1] ?? '');
        const auth = req.headers.authorization ?? '';
        const subject = auth.startsWith('Bearer ') ? federated.get(auth.slice(7)) : undefined;
        if (subject === undefined)
          return apiError(
            401,
            'UNAUTHENTICATED',
            'Request had invalid authentication credentials.',
          );
        if (!(pool.impersonation?.[sa] ?? []).includes(subject))
          return apiError(
            403,
            'PERMISSION_DENIED',
            "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
          );
        let body: {
          scope?: unknown;
          lifetime?: unknown;
          audience?: unknown;
          includeEmail?: unknown;
        };
        try {
          body = JSON.parse(req.body) as typeof body;
        } catch {
          return apiError(400, 'INVALID_ARGUMENT', 'Invalid JSON payload received.');
        }
        if (m[2] === 'generateIdToken') {
          if (typeof body.audience !== 'string' || body.audience === '')
            return apiError(400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.');
          const iat = Math.floor(now() / 1000);
          const token = await new SignJWT({ email: sa, email_verified: body.includeEmail === true })
            .setProtectedHeader({ alg: 'RS256', kid: 'google-1', typ: 'JWT' })
            .setIssuer('https://accounts.google.com')
            .setSubject('104857600000000000000')
            .setAudience(body.audience)
            .setIssuedAt(iat)
            .setExpirationTime(iat + 3600)
            .sign(idTokenKey);
          idTokens.set(token, { serviceAccount: sa, audience: body.audience });
          return json({ token });
        }
        const lifetime = typeof body.lifetime === 'string' ? /^(\d+)s$/.exec(body.lifetime) : null;
        if (!Array.isArray(body.scope) || body.scope.length === 0 || !lifetime)
          return apiError(400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.');
        const seconds = Number(lifetime[1]);
        if (seconds > 3600)
          return apiError(400, 'INVALID_ARGUMENT', 'The lifetime must be at most 3600s.');
        const token = `ya29.c.sa-${randomBytes(24).toString('base64url')}`;
        impersonated.set(token, sa);
        return json({
          accessToken: token,
          expireTime: new Date(now() + seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        });
      }
      return apiError(404, 'NOT_FOUND', 'Not found.');
    },
    { status: 502, contentType: 'text/html', body: '<html><body>502 Bad Gateway</body></html>' },
  );
  self.current = Object.assign(standIn, {
    federated,
    impersonated,
    idTokens,
    expiresIn: 3600,
  });
  return self.current;
}
