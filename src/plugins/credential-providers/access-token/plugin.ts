// access-token: an RFC 9068 access token from Tessera's own token service, subject the client's
// SPIFFE ID, for a resource server that trusts Tessera's issuer.
import { z } from 'zod';
import type { CredentialProviderPlugin } from '../credential-provider.ts';
import { ttlSeconds, ttlString } from '../shared/schema.ts';

export const ACCESS_TOKEN_TYPE = 'access-token';

const scopeToken = z
  .string()
  .regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/, 'must be a scope token (RFC 6749 §3.3)');

const schema = z.strictObject({
  audience: z.string().min(1).max(512),
  scopes: z.array(scopeToken).max(64).default([]),
  ttl: ttlString('5m', 10_000, 24 * 3_600_000),
});

export const accessTokenPlugin: CredentialProviderPlugin<typeof schema> = {
  type: ACCESS_TOKEN_TYPE,
  schema,
  secretsOf: () => [],
  create(record, config, deps) {
    const ttl = ttlSeconds(config.ttl);
    return {
      type: ACCESS_TOKEN_TYPE,
      name: record.name,
      async release(req) {
        const t = await deps.minting.accessToken(
          req.client.spiffeId,
          config.audience,
          config.scopes,
          ttl,
        );
        return { value: { kind: 'token', token: t.token }, expiresAt: t.expiresAt, leaseId: '' };
      },
    };
  },
};
