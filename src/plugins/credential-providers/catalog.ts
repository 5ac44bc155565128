// Built-in credential providers, listed explicitly: no discovery. Each type is a folder with its
// config schema and factory (credential-provider.ts); the broker builds providers from their
// records through this catalog and never branches on a type.
import { InvalidArgumentError } from '../../core/errors.ts';
import type {
  CredentialProvider,
  CredentialProviderDeps,
  CredentialProviderPlugin,
} from './credential-provider.ts';
import type { CredentialProviderRecord } from '../../core/access.ts';
import { accessTokenPlugin } from './access-token/plugin.ts';
import { jwtSvidPlugin } from './jwt-svid/plugin.ts';
import { oauth2ClientCredentialsPlugin } from './oauth2-client-credentials/plugin.ts';
import { postgresDynamicPlugin } from './postgres-dynamic/plugin.ts';
import { signedJwtPlugin } from './signed-jwt/plugin.ts';
import { staticSecretPlugin } from './static-secret/plugin.ts';
import { awsStsPlugin } from './aws-sts/plugin.ts';
import { azureFederatedPlugin } from './azure-federated/plugin.ts';
import { gcpWifPlugin } from './gcp-wif/plugin.ts';

export type {
  CredentialMinting,
  CredentialProvider,
  CredentialProviderDeps,
  CredentialProviderPlugin,
  CredentialRequest,
  LeasePort,
  SecretReader,
} from './credential-provider.ts';

export const builtinCredentialProviders: Readonly<Record<string, CredentialProviderPlugin>> =
  Object.freeze({
    [staticSecretPlugin.type]: staticSecretPlugin as CredentialProviderPlugin,
    [oauth2ClientCredentialsPlugin.type]: oauth2ClientCredentialsPlugin as CredentialProviderPlugin,
    [jwtSvidPlugin.type]: jwtSvidPlugin as CredentialProviderPlugin,
    [accessTokenPlugin.type]: accessTokenPlugin as CredentialProviderPlugin,
    [signedJwtPlugin.type]: signedJwtPlugin as CredentialProviderPlugin,
    [postgresDynamicPlugin.type]: postgresDynamicPlugin as CredentialProviderPlugin,
    [awsStsPlugin.type]: awsStsPlugin as CredentialProviderPlugin,
    [gcpWifPlugin.type]: gcpWifPlugin as CredentialProviderPlugin,
    [azureFederatedPlugin.type]: azureFederatedPlugin as CredentialProviderPlugin,
  });

function plugin(type: string): CredentialProviderPlugin {
  const p = Object.hasOwn(builtinCredentialProviders, type)
    ? builtinCredentialProviders[type]
    : undefined;
  if (!p) {
    const known = Object.keys(builtinCredentialProviders).join(', ');
    throw new InvalidArgumentError(
      `unknown credential provider type "${type}" (built-in: ${known})`,
    );
  }
  return p;
}

/**
 * Validates a provider's config with its type's schema. Returns the normalised config (defaults
 * filled) and the secrets it names. Throws InvalidArgumentError naming the type and key path.
 */
export function validateCredentialProviderConfig(
  type: string,
  config: unknown,
): { config: Record<string, unknown>; secrets: string[] } {
  const p = plugin(type);
  const parsed = p.schema.safeParse(config ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = ['config', ...(issue?.path ?? []).map(String)].join('.');
    const message =
      issue?.code === 'unrecognized_keys'
        ? `unknown key ${issue.keys.map((k) => `"${k}"`).join(', ')}`
        : (issue?.message ?? 'invalid');
    throw new InvalidArgumentError(`credential provider type ${type}: ${where}: ${message}`);
  }
  return {
    config: parsed.data as Record<string, unknown>,
    secrets: p.secretsOf(parsed.data),
  };
}

/** Builds a provider from its stored record (config validated again). */
export function createCredentialProvider(
  record: CredentialProviderRecord,
  deps: CredentialProviderDeps,
): CredentialProvider {
  const { config } = validateCredentialProviderConfig(record.type, record.config);
  return plugin(record.type).create(record, config, deps);
}
