// oauth2-client-credentials: a token from an OAuth 2.0 authorization server's token endpoint,
// the client authenticated with a secret (client_secret_basic, the default, or
// client_secret_post) or a private key (private_key_jwt). One token per provider, shared by every
// client it serves, cached until shortly before expiry.
import { z } from 'zod';
import { InvalidArgumentError } from '../../../core/errors.ts';
import type { CredentialProviderPlugin } from '../credential-provider.ts';
import { privateKeyFromPem } from '../shared/jws.ts';
import { secretName } from '../shared/schema.ts';
import { readSecretText } from '../shared/secret-text.ts';
import { TokenCache, refreshAt } from './token-cache.ts';
import { type ClientAuth, requestToken } from './token-request.ts';

export const OAUTH2_CLIENT_CREDENTIALS_TYPE = 'oauth2-client-credentials';

/** Lifetime assumed when the endpoint does not send expires_in. */
export const DEFAULT_TOKEN_LIFETIME_MS = 300_000;

const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** https, or http to a loopback host only: the client secret must not cross a network in clear. */
const tokenUrl = z
  .string()
  .max(2048)
  .superRefine((v, ctx) => {
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: `not a URL: "${v.slice(0, 100)}"` });
      return;
    }
    const ok = u.protocol === 'https:' || (u.protocol === 'http:' && LOOPBACK.has(u.hostname));
    if (!ok)
      ctx.addIssue({ code: 'custom', message: 'must be https:// (http:// only to loopback)' });
    if (u.username !== '' || u.password !== '' || u.hash !== '') {
      ctx.addIssue({ code: 'custom', message: 'must not hold credentials or a fragment' });
    }
  });

const schema = z
  .strictObject({
    token_url: tokenUrl,
    client_id: z.string().min(1).max(512),
    client_secret: secretName.optional(),
    private_key: secretName.optional(),
    auth_method: z
      .enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt'])
      .optional(),
    scope: z.string().max(2048).default(''),
    audience: z.string().max(2048).optional(),
    resource: z.string().max(2048).optional(),
    /** Milliseconds for the whole token request. */
    timeout_ms: z.number().int().min(100).max(60_000).default(10_000),
  })
  .superRefine((c, ctx) => {
    if ((c.client_secret === undefined) === (c.private_key === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['client_secret'],
        message: 'set exactly one of client_secret and private_key',
      });
    }
    const method = c.auth_method;
    if (c.private_key !== undefined && method !== undefined && method !== 'private_key_jwt') {
      ctx.addIssue({
        code: 'custom',
        path: ['auth_method'],
        message: 'private_key authenticates with private_key_jwt',
      });
    }
    if (c.client_secret !== undefined && method === 'private_key_jwt') {
      ctx.addIssue({
        code: 'custom',
        path: ['auth_method'],
        message: 'private_key_jwt needs private_key, not client_secret',
      });
    }
  });

export const oauth2ClientCredentialsPlugin: CredentialProviderPlugin<typeof schema> = {
  type: OAUTH2_CLIENT_CREDENTIALS_TYPE,
  schema,
  secretsOf: (c) => [c.client_secret ?? c.private_key ?? ''].filter((s) => s !== ''),
  create(record, config, deps) {
    const what = (s: string) => `credential provider "${record.name}": secret "${s}"`;
    const auth = async (): Promise<ClientAuth> => {
      if (config.private_key !== undefined) {
        const pem = await readSecretText(deps.secrets, record.name, config.private_key);
        return { method: 'private_key_jwt', key: privateKeyFromPem(pem, what(config.private_key)) };
      }
      if (config.client_secret === undefined) throw new InvalidArgumentError('no client secret');
      const secret = await readSecretText(deps.secrets, record.name, config.client_secret);
      return config.auth_method === 'client_secret_post'
        ? { method: 'client_secret_post', secret }
        : { method: 'client_secret_basic', secret };
    };
    const cache = new TokenCache(async () => {
      const fetchedAt = deps.now();
      const res = await requestToken({
        tokenUrl: config.token_url,
        clientId: config.client_id,
        auth: await auth(),
        scope: config.scope,
        audience: config.audience ?? '',
        resource: config.resource ?? '',
        timeoutMs: config.timeout_ms,
        now: fetchedAt,
        fetch: deps.fetch,
      });
      const expiresAt =
        fetchedAt + (res.expiresIn === null ? DEFAULT_TOKEN_LIFETIME_MS : res.expiresIn * 1000);
      return { token: res.accessToken, expiresAt, refreshAt: refreshAt(fetchedAt, expiresAt) };
    }, deps.now);
    return {
      type: OAUTH2_CLIENT_CREDENTIALS_TYPE,
      name: record.name,
      async release() {
        const t = await cache.get();
        return { value: { kind: 'token', token: t.token }, expiresAt: t.expiresAt, leaseId: '' };
      },
      async close() {
        cache.clear();
      },
    };
  },
};
