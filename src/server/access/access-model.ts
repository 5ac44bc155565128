// The access model's admin services, built together from one set of dependencies.
import type { AccessAdminDeps } from './access-admin-deps.ts';
import { AccessImport } from './access-import.ts';
import { AccessPolicyAdmin } from './access-policy-admin.ts';
import { CredentialProviderAdmin } from './credential-provider-admin.ts';
import { ServerWorkloadAdmin } from './server-workload-admin.ts';

export interface AccessModelServices {
  readonly serverWorkloads: ServerWorkloadAdmin;
  readonly credentialProviders: CredentialProviderAdmin;
  readonly accessPolicies: AccessPolicyAdmin;
  readonly importer: AccessImport;
}

export function buildAccessModel(d: AccessAdminDeps): AccessModelServices {
  return {
    serverWorkloads: new ServerWorkloadAdmin(d),
    credentialProviders: new CredentialProviderAdmin(d),
    accessPolicies: new AccessPolicyAdmin(d),
    importer: new AccessImport(d),
  };
}
