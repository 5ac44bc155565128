// gcp-wif: a Google Cloud access token for the client through workload identity federation. The
// client's JWT-SVID is exchanged at Google's STS for a federated token of the pool's principal
// (`principal://iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/subject/
// <SPIFFE ID>`), which is returned as is or — with `service_account` — spent on
// generateAccessToken (or generateIdToken) for that service account. Tokens are kept per client
// until shortly before the SDKs' 5-minute expiry window. Setup in docs/cloud-credentials.md.
import { z } from 'zod';
import type { CredentialProviderPlugin } from '../credential-provider.ts';
import { ClientCredentialCache } from '../shared/client-cache.ts';
import type { ExpiringToken } from '../shared/oauth-answer.ts';
import { endpointUrl } from '../shared/endpoint-url.ts';
import { ttlSeconds, ttlString } from '../shared/schema.ts';
import { generateAccessToken, generateIdToken } from './iam-credentials.ts';
import { exchangeToken } from './sts-exchange.ts';

export const GCP_WIF_TYPE = 'gcp-wif';
export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
/** The JWT-SVID only has to live through the exchange (Google caps it at 48 h anyway). */
export const SUBJECT_TOKEN_TTL_SECONDS = 300;

/** Pool and provider IDs: 4–32 of [a-z0-9-], the prefix "gcp-" reserved by Google. */
const poolId = z
  .string()
  .regex(/^[a-z0-9-]{4,32}$/, 'must be 4-32 lowercase letters, digits or "-"')
  .refine((v) => !v.startsWith('gcp-'), 'the prefix "gcp-" is reserved by Google');

const scope = z
  .string()
  .max(512)
  .regex(/^[\x21-\x7e]+$/, 'must be a scope (no spaces)');

const schema = z
  .strictObject({
    /** A string; a YAML or `--set` number is taken as its digits. */
    project_number: z.preprocess(
      (v) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? String(v) : v),
      z.string().regex(/^\d{1,20}$/, 'must be the numeric project number'),
    ),
    pool_id: poolId,
    provider_id: poolId,
    /** Impersonate this service account (generateAccessToken); absent = the federated token. */
    service_account: z
      .string()
      .max(256)
      .regex(/^[a-z0-9._-]+@[a-z0-9.-]+$/, 'must be a service account email')
      .optional(),
    scopes: z.array(scope).min(1).max(32).default([CLOUD_PLATFORM_SCOPE]),
    /**
     * With service_account: an ID token for this audience (generateIdToken, e.g. a Cloud Run URL)
     * instead of an access token; `scopes` and `lifetime` then do not apply.
     */
    id_token_audience: z.string().min(1).max(2048).optional(),
    /** generateAccessToken `lifetime` (Google allows up to 1 h, 12 h with an org policy). */
    lifetime: ttlString('1h', 600_000, 12 * 3_600_000),
    /** The JWT-SVID's `aud`; default: the provider's resource name with `https:`. */
    jwt_audience: z.string().min(1).max(256).optional(),
    sts_endpoint: endpointUrl.default('https://sts.googleapis.com/v1/token'),
    iam_credentials_endpoint: endpointUrl.default('https://iamcredentials.googleapis.com'),
    /** Milliseconds for each call. */
    timeout_ms: z.number().int().min(100).max(60_000).default(10_000),
  })
  .superRefine((c, ctx) => {
    if (c.id_token_audience !== undefined && c.service_account === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['id_token_audience'],
        message: 'an ID token is generated for a service account: set service_account',
      });
  });

export type GcpWifConfig = z.output<typeof schema>;

/** The provider's full resource name, the STS audience. */
export const providerResource = (c: GcpWifConfig): string =>
  `//iam.googleapis.com/projects/${c.project_number}/locations/global/workloadIdentityPools/${c.pool_id}/providers/${c.provider_id}`;

export const gcpWifPlugin: CredentialProviderPlugin<typeof schema> = {
  type: GCP_WIF_TYPE,
  schema,
  secretsOf: () => [],
  create(record, config, deps) {
    const audience = providerResource(config);
    const jwtAudience = config.jwt_audience ?? `https:${audience}`;
    const lifetimeSeconds = ttlSeconds(config.lifetime);
    const sa = config.service_account;
    const cache = new ClientCredentialCache<ExpiringToken>(deps.now);
    const fetchFor = async (spiffeId: string): Promise<ExpiringToken> => {
      const svid = await deps.minting.jwtSvid(spiffeId, [jwtAudience], SUBJECT_TOKEN_TTL_SECONDS);
      const federated = await exchangeToken({
        url: config.sts_endpoint,
        audience,
        // Impersonation asks STS for cloud-platform; the scopes go to generateAccessToken.
        scopes: sa === undefined ? config.scopes : [CLOUD_PLATFORM_SCOPE],
        subjectToken: svid.token,
        timeoutMs: config.timeout_ms,
        now: deps.now(),
        fetch: deps.fetch,
      });
      if (sa === undefined) return federated;
      const iam = {
        endpoint: config.iam_credentials_endpoint,
        serviceAccount: sa,
        federatedToken: federated.token,
        timeoutMs: config.timeout_ms,
        now: deps.now(),
        fetch: deps.fetch,
      };
      if (config.id_token_audience !== undefined)
        return generateIdToken({ ...iam, audience: config.id_token_audience });
      return generateAccessToken({ ...iam, scopes: config.scopes, lifetimeSeconds });
    };
    return {
      type: GCP_WIF_TYPE,
      name: record.name,
      async release(req) {
        const id = req.client.spiffeId;
        const t = await cache.get(id, () => fetchFor(id));
        return { value: { kind: 'token', token: t.token }, expiresAt: t.expiresAt, leaseId: '' };
      },
      async close() {
        cache.clear();
      },
    };
  },
};
