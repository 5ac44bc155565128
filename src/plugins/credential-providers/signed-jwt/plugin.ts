// signed-jwt: a JWT signed with a private key from the secret store, its claims made from a
// template (key-pair auth as Snowflake and GitHub Apps use). iat, exp and jti are added; the
// header's alg follows from the key type, kid comes from config when set.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { CredentialProviderPlugin } from '../credential-provider.ts';
import { privateKeyFromPem, signJws } from '../shared/jws.ts';
import { secretName, ttlSeconds, ttlString } from '../shared/schema.ts';
import { readSecretText } from '../shared/secret-text.ts';
import { renderClaims, templateProblems } from './claims-template.ts';

export const SIGNED_JWT_TYPE = 'signed-jwt';

const schema = z
  .strictObject({
    private_key: secretName,
    claims: z.record(z.string().min(1).max(256), z.unknown()).default({}),
    ttl: ttlString('5m', 10_000, 24 * 3_600_000),
    kid: z.string().min(1).max(256).optional(),
    /** Seconds iat is set in the past, for verifiers whose clocks lag (GitHub suggests 60). */
    iat_backdate: z.number().int().min(0).max(300).default(0),
  })
  .superRefine((c, ctx) => {
    for (const p of templateProblems(c.claims)) {
      const [path = 'claims', ...msg] = p.split(': ');
      ctx.addIssue({ code: 'custom', path: path.split('.'), message: msg.join(': ') });
    }
  });

export const signedJwtPlugin: CredentialProviderPlugin<typeof schema> = {
  type: SIGNED_JWT_TYPE,
  schema,
  secretsOf: (c) => [c.private_key],
  create(record, config, deps) {
    const ttl = ttlSeconds(config.ttl);
    return {
      type: SIGNED_JWT_TYPE,
      name: record.name,
      async release(req) {
        const pem = await readSecretText(deps.secrets, record.name, config.private_key);
        const key = privateKeyFromPem(
          pem,
          `credential provider "${record.name}": secret "${config.private_key}"`,
        );
        const now = Math.floor(deps.now() / 1000);
        const claims = {
          ...renderClaims(config.claims, {
            client: req.client,
            server: req.server,
            policy: req.policy,
            now,
          }),
          iat: now - config.iat_backdate,
          exp: now + ttl,
          jti: randomUUID(),
        };
        const token = signJws(key, claims, config.kid === undefined ? {} : { kid: config.kid });
        return { value: { kind: 'token', token }, expiresAt: (now + ttl) * 1000, leaseId: '' };
      },
    };
  },
};
