// Admin operations on credential providers: the type's schema validates the config (through the
// injected catalog validator), every secret the config names must exist in the secret store,
// then the record is stored and audited in one transaction. Deleting one ends its leases.
import { policiesPhrase, type CredentialProviderRecord } from '../../core/access.ts';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../../core/errors.ts';
import type { RequestContext } from '../../core/caller.ts';
import type { AccessAdminDeps } from './access-admin-deps.ts';
import { auditedChange } from './audited-change.ts';
import { type At, checkName, type CredentialProviderInput, shown } from './access-fields.ts';

export const MAX_PROVIDER_TYPE_LENGTH = 64;
/** A config is settings and secret names: 64 KiB of JSON is far more than any type needs. */
export const MAX_PROVIDER_CONFIG_BYTES = 64 * 1024;

/** Audit details of a provider: its type, the config's keys and the secrets it names (never a value). */
export const describeProvider = (p: CredentialProviderRecord, secrets: readonly string[]) => ({
  type: p.type,
  config_keys: Object.keys(p.config).sort(),
  refers_to: [...secrets].sort(),
});

export interface CheckedProvider {
  readonly record: Omit<CredentialProviderRecord, 'createdAt' | 'updatedAt'>;
  readonly secrets: readonly string[];
}

/** Name, type and config (the catalog's schema, normalised); `at` prefixes document errors. */
export function checkProvider(
  d: Pick<AccessAdminDeps, 'validateProviderConfig'>,
  at: At,
  input: CredentialProviderInput,
): CheckedProvider {
  const name = checkName(at, 'name', input.name);
  if (input.type === '') throw new InvalidArgumentError(`${at}type: is required`);
  if (input.type.length > MAX_PROVIDER_TYPE_LENGTH)
    throw new InvalidArgumentError(`${at}type: longer than ${MAX_PROVIDER_TYPE_LENGTH} characters`);
  if (Buffer.byteLength(JSON.stringify(input.config ?? {}), 'utf8') > MAX_PROVIDER_CONFIG_BYTES)
    throw new InvalidArgumentError(
      `${at}config: larger than ${MAX_PROVIDER_CONFIG_BYTES / 1024} KiB`,
    );
  try {
    const { config, secrets } = d.validateProviderConfig(input.type, input.config);
    return { record: { name, type: input.type, config }, secrets };
  } catch (e) {
    if (at !== '' && e instanceof InvalidArgumentError)
      throw new InvalidArgumentError(`${at.slice(0, -1)}: ${e.message}`, { cause: e });
    throw e;
  }
}

/** Every secret named must exist (checked before anything is stored). */
export async function checkSecretsExist(
  d: Pick<AccessAdminDeps, 'secrets'>,
  at: At,
  name: string,
  secrets: readonly string[],
): Promise<void> {
  for (const s of secrets) {
    if (!(await d.secrets.exists(s)))
      throw new FailedPreconditionError(
        `${at === '' ? '' : at.slice(0, -1) + ': '}credential provider "${name}": secret ${shown(s)} does not exist (create it with \`tessera secret put\`)`,
      );
  }
}

export class CredentialProviderAdmin {
  readonly #d: AccessAdminDeps;

  constructor(d: AccessAdminDeps) {
    this.#d = d;
  }

  async create(
    ctx: RequestContext,
    input: CredentialProviderInput,
  ): Promise<CredentialProviderRecord> {
    const { record, secrets } = checkProvider(this.#d, '', input);
    await checkSecretsExist(this.#d, '', record.name, secrets);
    const now = this.#d.clock.now();
    return auditedChange(
      this.#d,
      ctx,
      'credential_provider.create',
      record.name,
      (tx) => tx.access.createCredentialProvider({ ...record, createdAt: now, updatedAt: now }),
      (created) => describeProvider(created, secrets),
    );
  }

  /**
   * Ends the leases released through it, then deletes it (refused while policies use it, checked
   * again inside the deleting transaction). The leases go first: ending one needs the provider
   * (its admin connection), which is gone once the record is. No policy names it, so no lease can
   * be released through it in between.
   */
  async delete(
    ctx: RequestContext,
    name: string,
  ): Promise<{ provider: CredentialProviderRecord; leasesEnded: number }> {
    checkName('', 'name', name);
    if (!(await this.#d.store.access.getCredentialProvider(name))) {
      throw new NotFoundError(`credential provider "${name}" not found`);
    }
    const users = (await this.#d.store.access.listAccessPolicies())
      .filter((p) => p.credentialProvider === name)
      .map((p) => p.name);
    if (users.length > 0) {
      throw new FailedPreconditionError(
        `credential provider "${name}" is used by ${policiesPhrase(users)}: delete or change them first`,
      );
    }
    const leasesEnded = await this.#d.revocation.revoke(
      { provider: name },
      `credential provider "${name}" deleted`,
    );
    const provider = await auditedChange(
      this.#d,
      ctx,
      'credential_provider.delete',
      name,
      (tx) => tx.access.deleteCredentialProvider(name),
      (gone) => ({ type: gone.type }),
    );
    return { provider, leasesEnded };
  }

  async get(name: string): Promise<CredentialProviderRecord> {
    checkName('', 'name', name);
    const p = await this.#d.store.access.getCredentialProvider(name);
    if (!p) throw new NotFoundError(`credential provider "${name}" does not exist`);
    return p;
  }

  list(): Promise<CredentialProviderRecord[]> {
    return this.#d.store.access.listCredentialProviders();
  }
}
