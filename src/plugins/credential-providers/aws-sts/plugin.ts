// aws-sts: temporary AWS credentials for the client, from STS AssumeRoleWithWebIdentity with the
// client's own JWT-SVID as the web identity token. AWS trusts Tessera through an IAM OIDC
// identity provider for Tessera's issuer and the role's trust policy (`<issuer>:sub` = the
// client's SPIFFE ID, `<issuer>:aud` = `audience`); see docs/cloud-credentials.md. Credentials
// are kept per client until shortly before the SDKs' 5-minute expiry window.
import { z } from 'zod';
import type { CredentialProviderPlugin } from '../credential-provider.ts';
import { ClientCredentialCache } from '../shared/client-cache.ts';
import { endpointUrl } from '../shared/endpoint-url.ts';
import { ttlSeconds, ttlString } from '../shared/schema.ts';
import { type AwsCredentials, assumeRoleWithWebIdentity } from './assume-role.ts';
import { roleSessionName } from './session-name.ts';

export const AWS_STS_TYPE = 'aws-sts';

/** The JWT-SVID only has to live through the call to STS. */
export const SUBJECT_TOKEN_TTL_SECONDS = 300;

const ROLE_ARN = /^arn:aws[a-z-]{0,20}:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;

const schema = z.strictObject({
  role_arn: z
    .string()
    .max(2048)
    .regex(ROLE_ARN, 'must be an IAM role ARN (arn:aws:iam::123456789012:role/NAME)'),
  /** The JWT-SVID's `aud`: the client ID registered with the IAM OIDC identity provider. */
  audience: z.string().min(1).max(256).default('sts.amazonaws.com'),
  /** DurationSeconds: 15 minutes up to the role's maximum session duration (at most 12 h). */
  duration: ttlString('1h', 900_000, 12 * 3_600_000),
  sts_endpoint: endpointUrl.default('https://sts.amazonaws.com'),
  /** Milliseconds for the whole STS call. */
  timeout_ms: z.number().int().min(100).max(60_000).default(10_000),
});

export const awsStsPlugin: CredentialProviderPlugin<typeof schema> = {
  type: AWS_STS_TYPE,
  schema,
  secretsOf: () => [],
  create(record, config, deps) {
    const durationSeconds = ttlSeconds(config.duration);
    const cache = new ClientCredentialCache<AwsCredentials>(deps.now);
    const fetchFor = async (spiffeId: string): Promise<AwsCredentials> => {
      const svid = await deps.minting.jwtSvid(
        spiffeId,
        [config.audience],
        SUBJECT_TOKEN_TTL_SECONDS,
      );
      return assumeRoleWithWebIdentity({
        endpoint: config.sts_endpoint,
        roleArn: config.role_arn,
        sessionName: roleSessionName(spiffeId),
        webIdentityToken: svid.token,
        durationSeconds,
        timeoutMs: config.timeout_ms,
        now: deps.now(),
        fetch: deps.fetch,
      });
    };
    return {
      type: AWS_STS_TYPE,
      name: record.name,
      async release(req) {
        const id = req.client.spiffeId;
        const c = await cache.get(id, () => fetchFor(id));
        return {
          value: {
            kind: 'aws',
            accessKeyId: c.accessKeyId,
            secretAccessKey: c.secretAccessKey,
            sessionToken: c.sessionToken,
          },
          expiresAt: c.expiresAt,
          leaseId: '',
        };
      },
      async close() {
        cache.clear();
      },
    };
  },
};
