// Importing an access document: parse (access-document.ts), then every check that needs the
// injected validators — provider configs by their type's schema, the secrets they name, the
// policies' client patterns and conditions — and only then one store transaction that creates or
// replaces everything with its audit record. Any error: nothing stored. Replaced policies and
// providers have their leases ended after the commit, as an update or delete would.
import type { AccessPolicy, CredentialProviderRecord, ServerWorkload } from '../../core/access.ts';
import type { RequestContext } from '../../core/caller.ts';
import type { AccessAdminDeps } from './access-admin-deps.ts';
import { parseAccessDocument } from './access-document.ts';
import { checkPolicy } from './access-policy-admin.ts';
import { checkProvider, checkSecretsExist } from './credential-provider-admin.ts';

export interface ImportCounts {
  readonly serverWorkloads: number;
  readonly credentialProviders: number;
  readonly accessPolicies: number;
}

export class AccessImport {
  readonly #d: AccessAdminDeps;

  constructor(d: AccessAdminDeps) {
    this.#d = d;
  }

  async import(ctx: RequestContext, text: string): Promise<ImportCounts> {
    const doc = parseAccessDocument(text);
    const now = this.#d.clock.now();
    const stamp = <T>(o: T) => ({ ...o, createdAt: now, updatedAt: now });
    const serverWorkloads: ServerWorkload[] = doc.serverWorkloads.map(stamp);
    const credentialProviders: CredentialProviderRecord[] = [];
    for (const [i, input] of doc.credentialProviders.entries()) {
      const at = `credential_providers[${i}].`;
      const { record, secrets } = checkProvider(this.#d, at, input);
      await checkSecretsExist(this.#d, at, record.name, secrets);
      credentialProviders.push(stamp(record));
    }
    const accessPolicies: AccessPolicy[] = doc.accessPolicies.map((p, i) =>
      checkPolicy(this.#d, `access_policies[${i}].`, { ...p, deny: p.effect === 'deny' }, now),
    );
    const counts = {
      serverWorkloads: serverWorkloads.length,
      credentialProviders: credentialProviders.length,
      accessPolicies: accessPolicies.length,
    };
    const { replaced } = await this.#d.store.transaction(async (tx) => {
      const res = await tx.access.importDocument({
        serverWorkloads,
        credentialProviders,
        accessPolicies,
      });
      await this.#d.auditor.record(tx, ctx, {
        action: 'access_policy.import',
        target: '',
        outcome: 'success',
        details: {
          server_workloads: counts.serverWorkloads,
          providers: counts.credentialProviders,
          access_policies: counts.accessPolicies,
          replaced_server_workloads: res.replaced.serverWorkloads.length,
          replaced_providers: res.replaced.credentialProviders.length,
          replaced_access_policies: res.replaced.accessPolicies.length,
        },
      });
      return res;
    });
    for (const name of replaced.accessPolicies)
      await this.#d.revocation.revoke(
        { policy: name },
        `access policy "${name}" replaced by an import`,
      );
    for (const name of replaced.credentialProviders)
      await this.#d.revocation.revoke(
        { provider: name },
        `credential provider "${name}" replaced by an import`,
      );
    return counts;
  }
}
