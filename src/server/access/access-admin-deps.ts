// What the access-model admin services are built from. The three injected checks belong to
// other rooms and are passed in by the composition root (compose/services.ts):
// - validateProviderConfig: plugins/credential-providers/catalog.ts validateCredentialProviderConfig;
// - secrets: the secret store's existence check (server/broker);
// - checkPolicy: the client pattern and the compiled CEL condition (server/access/check-policy.ts);
// - revocation: ends leases and purges agent caches (server/broker).
import type { AccessPolicy, AccessRevocation } from '../../core/access.ts';
import type { Clock } from '../../core/clock.ts';
import type { Store } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';

/** Validates a provider type's config; InvalidArgumentError naming the type and key path. */
export type ProviderConfigValidator = (
  type: string,
  config: unknown,
) => { config: Record<string, unknown>; secrets: string[] };

/** Whether a secret of this name exists in the secret store (never its value). */
export interface SecretExistence {
  exists(name: string): Promise<boolean>;
}

/** Checks a policy's client pattern and condition; InvalidArgumentError naming the field. */
export type PolicyCheck = (p: AccessPolicy) => void;

export interface AccessAdminDeps {
  readonly store: Store;
  readonly auditor: Auditor;
  readonly clock: Clock;
  readonly validateProviderConfig: ProviderConfigValidator;
  readonly secrets: SecretExistence;
  readonly checkPolicy: PolicyCheck;
  readonly revocation: AccessRevocation;
}
