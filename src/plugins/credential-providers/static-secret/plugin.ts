// static-secret: hands out a secret from the secret store as it is. `format: value` → a token
// (API key, bearer token); `format: username-password` → a password credential, the secret being
// either JSON {"username": .., "password": ..} or, when config sets `username`, the password
// alone. Nothing expires and no lease is kept: rotating the secret is how it changes.
import { z } from 'zod';
import { FailedPreconditionError } from '../../../core/errors.ts';
import type { CredentialProviderPlugin } from '../credential-provider.ts';
import { secretName } from '../shared/schema.ts';
import { readSecretText } from '../shared/secret-text.ts';

export const STATIC_SECRET_TYPE = 'static-secret';

const schema = z
  .strictObject({
    secret: secretName,
    format: z.enum(['value', 'username-password']).default('value'),
    /** username-password: the username, the secret then being the password alone. */
    username: z.string().min(1).max(256).optional(),
  })
  .refine((c) => c.username === undefined || c.format === 'username-password', {
    message: 'username is only used with format: username-password',
    path: ['username'],
  });

function parsePair(text: string, provider: string, secret: string) {
  const bad = () =>
    new FailedPreconditionError(
      `credential provider "${provider}": secret "${secret}" must be JSON {"username": "...", "password": "..."} ` +
        '(or set config username and store the password alone)',
    );
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw bad();
  }
  if (typeof v !== 'object' || v === null) throw bad();
  const { username, password } = v as Record<string, unknown>;
  if (typeof username !== 'string' || typeof password !== 'string' || username === '') throw bad();
  return { username, password };
}

export const staticSecretPlugin: CredentialProviderPlugin<typeof schema> = {
  type: STATIC_SECRET_TYPE,
  schema,
  secretsOf: (c) => [c.secret],
  create(record, config, deps) {
    return {
      type: STATIC_SECRET_TYPE,
      name: record.name,
      async release() {
        const text = await readSecretText(deps.secrets, record.name, config.secret);
        if (config.format === 'value') {
          return { value: { kind: 'token', token: text }, expiresAt: null, leaseId: '' };
        }
        const pair =
          config.username !== undefined
            ? { username: config.username, password: text }
            : parsePair(text, record.name, config.secret);
        return { value: { kind: 'password', ...pair }, expiresAt: null, leaseId: '' };
      },
    };
  },
};
