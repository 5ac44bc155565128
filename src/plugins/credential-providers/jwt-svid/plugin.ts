// jwt-svid: a JWT-SVID of the client itself for the configured audience, minted by the server's
// JWT authority (the server workload verifies it against the trust bundle or OIDC discovery).
import { z } from 'zod';
import type { CredentialProviderPlugin } from '../credential-provider.ts';
import { ttlSeconds, ttlString } from '../shared/schema.ts';

export const JWT_SVID_TYPE = 'jwt-svid';

const schema = z.strictObject({
  audience: z.array(z.string().min(1).max(512)).min(1).max(16),
  ttl: ttlString('5m', 10_000, 24 * 3_600_000),
});

export const jwtSvidPlugin: CredentialProviderPlugin<typeof schema> = {
  type: JWT_SVID_TYPE,
  schema,
  secretsOf: () => [],
  create(record, config, deps) {
    const ttl = ttlSeconds(config.ttl);
    return {
      type: JWT_SVID_TYPE,
      name: record.name,
      async release(req) {
        const t = await deps.minting.jwtSvid(req.client.spiffeId, config.audience, ttl);
        return { value: { kind: 'token', token: t.token }, expiresAt: t.expiresAt, leaseId: '' };
      },
    };
  },
};
