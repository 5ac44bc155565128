// Microsoft Entra ID's v2.0 token endpoint for workload identity federation, for tests:
// `POST /<tenant>/oauth2/v2.0/token` with the client-credentials grant and a client assertion,
// accepted when it matches one federated identity credential of the app (issuer, subject, the
// single audience) and is signed RS256 — the only algorithm Entra supports for federation.
// Errors in Entra's shape: {error, error_description: "AADSTSnnnn: ...", error_codes, ...}.
import { randomBytes, randomUUID } from 'node:crypto';
import { type StandIn, form, startStandIn, verifySubjectToken } from './stand-in-server.ts';

export interface EntraApp {
  readonly tenantId: string;
  readonly clientId: string;
  /** Federated identity credentials of the app. */
  readonly federated: ReadonlyArray<{ issuer: string; subject: string; audience: string }>;
}

export interface EntraStandIn extends StandIn {
  /** Tokens issued: token → {subject, scope}. */
  readonly issued: Map<string, { subject: string; scope: string }>;
  /** `expires_in` of the tokens it issues (Entra: 3599; shorter makes the SDKs refresh). */
  expiresIn: number;
}

function aadError(status: number, error: string, code: number, message: string) {
  return {
    status,
    contentType: 'application/json; charset=utf-8',
    body: JSON.stringify({
      error,
      error_description: `AADSTS${code}: ${message} Trace ID: ${randomUUID()} Correlation ID: ${randomUUID()} Timestamp: ${new Date().toISOString()}`,
      error_codes: [code],
      timestamp: new Date().toISOString(),
      trace_id: randomUUID(),
      correlation_id: randomUUID(),
    }),
  };
}

/**
 * `tls`: serve HTTPS (MSAL accepts only https authorities), and then also the tenant's OpenID
 * configuration (`GET /<tenant>/v2.0/.well-known/openid-configuration`), which MSAL reads first.
 */
export async function startEntraStandIn(
  app: EntraApp,
  tls?: { readonly key: string; readonly cert: string },
): Promise<EntraStandIn> {
  const issued = new Map<string, { subject: string; scope: string }>();
  /** Itself, once started: `expiresIn` is read at answer time (the test may shorten it). */
  const self: { current?: EntraStandIn } = {};
  let base = '';
  const standIn = await startStandIn(
    async (req) => {
      if (
        req.method === 'GET' &&
        req.path === `/${app.tenantId}/v2.0/.well-known/openid-configuration`
      )
        return {
          status: 200,
          contentType: 'application/json; charset=utf-8',
          body: JSON.stringify({
            issuer: `${base}/${app.tenantId}/v2.0`,
            authorization_endpoint: `${base}/${app.tenantId}/oauth2/v2.0/authorize`,
            token_endpoint: `${base}/${app.tenantId}/oauth2/v2.0/token`,
            jwks_uri: `${base}/${app.tenantId}/discovery/v2.0/keys`,
            token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt'],
            response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
            subject_types_supported: ['pairwise'],
            id_token_signing_alg_values_supported: ['RS256'],
            tenant_region_scope: 'EU',
          }),
        };
      const tokenPath = `/${app.tenantId}/oauth2/v2.0/token`;
      if (req.method !== 'POST' || req.path.split('?')[0] !== tokenPath)
        return aadError(
          400,
          'invalid_request',
          90002,
          `Tenant '${req.path.split('/')[1] ?? ''}' not found.`,
        );
      const f = form(req.body);
      if (f.get('grant_type') !== 'client_credentials')
        return aadError(
          400,
          'unsupported_grant_type',
          70003,
          'The app requested an unsupported grant type.',
        );
      if (f.get('client_id') !== app.clientId)
        return aadError(
          400,
          'unauthorized_client',
          700016,
          `Application with identifier '${f.get('client_id') ?? ''}' was not found in the directory.`,
        );
      if (!(f.get('scope') ?? '').endsWith('/.default'))
        return aadError(
          400,
          'invalid_scope',
          1002012,
          'The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.',
        );
      if (
        f.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
      )
        return aadError(400, 'invalid_request', 700023, 'Invalid client_assertion_type.');
      const assertion = f.get('client_assertion') ?? '';
      const candidates = app.federated;
      let rejection = '';
      for (const fic of candidates) {
        const v = await verifySubjectToken(assertion, {
          issuer: fic.issuer,
          audiences: [fic.audience],
          algorithms: ['RS256'],
        });
        if ('claims' in v) {
          if (v.claims.sub !== fic.subject) {
            rejection = `No matching federated identity record found for presented assertion subject '${String(v.claims.sub)}'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion.`;
            continue;
          }
          const token = randomBytes(32).toString('base64url');
          issued.set(token, { subject: fic.subject, scope: f.get('scope') ?? '' });
          return {
            status: 200,
            contentType: 'application/json; charset=utf-8',
            body: JSON.stringify({
              token_type: 'Bearer',
              expires_in: self.current?.expiresIn ?? 3599,
              ext_expires_in: self.current?.expiresIn ?? 3599,
              access_token: token,
            }),
          };
        }
        const r = v.rejected;
        rejection =
          r.kind === 'jwks-unavailable'
            ? `Unable to retrieve the signing keys of issuer '${fic.issuer}'.`
            : r.kind === 'expired'
              ? 'Client assertion is not within its valid time range.'
              : r.kind === 'audience'
                ? 'The audience of the client assertion does not match the federated identity credential.'
                : 'Client assertion failed signature validation.';
      }
      return aadError(
        401,
        'invalid_client',
        700213,
        rejection || 'No federated identity credential.',
      );
    },
    {
      status: 503,
      contentType: 'text/html',
      body: '<html><body>Service Unavailable</body></html>',
    },
    tls,
  );
  base = standIn.url;
  self.current = Object.assign(standIn, {
    issued,
    expiresIn: 3599,
  });
  return self.current;
}
