// Authorization is data, default deny: every RPC has exactly one rule here, naming the caller
// kinds allowed. A method missing from the table is refused, and authz-table.test.ts fails if
// any registered method has no rule.
import type { Caller } from '../../core/caller.ts';

export type CallerKind = Caller['kind'];

const ADMIN: CallerKind[] = ['local-admin', 'admin'];
const AGENT: CallerKind[] = ['agent'];

export const authzTable: Readonly<Record<string, readonly CallerKind[]>> = {
  // Node attestation happens before the agent has an SVID: TLS only authenticates the server.
  '/tessera.v1.AgentService/AttestAgent': [
    'anonymous',
    'agent',
    'workload',
    'admin',
    'local-admin',
  ],
  '/tessera.v1.AgentService/RenewAgent': AGENT,
  '/tessera.v1.AgentService/ListAgents': ADMIN,
  '/tessera.v1.AgentService/GetAgent': ADMIN,
  '/tessera.v1.AgentService/BanAgent': ADMIN,
  '/tessera.v1.AgentService/EvictAgent': ADMIN,
  '/tessera.v1.AgentService/CreateJoinToken': ADMIN,
  '/tessera.v1.EntryService/BatchCreateEntry': ADMIN,
  '/tessera.v1.EntryService/BatchUpdateEntry': ADMIN,
  '/tessera.v1.EntryService/BatchDeleteEntry': ADMIN,
  '/tessera.v1.EntryService/GetEntry': ADMIN,
  '/tessera.v1.EntryService/ListEntries': ADMIN,
  '/tessera.v1.EntryService/CheckParent': ADMIN,
  '/tessera.v1.SvidService/MintX509SVID': ADMIN,
  '/tessera.v1.SvidService/MintJWTSVID': ADMIN,
  '/tessera.v1.SvidService/BatchNewX509SVID': AGENT,
  '/tessera.v1.SvidService/NewJWTSVID': AGENT,
  '/tessera.v1.SvidService/BatchNewJWTSVID': AGENT,
  '/tessera.v1.SvidService/CheckEntryConditions': AGENT,
  '/tessera.v1.SvidService/NewIdentityDocument': AGENT,
  '/tessera.v1.PostureService/ImportPosture': ADMIN,
  '/tessera.v1.PostureService/ListPosture': ADMIN,
  '/tessera.v1.PostureService/GetPosture': ADMIN,
  '/tessera.v1.SyncService/GetAuthorizedEntries': AGENT,
  '/tessera.v1.SyncService/SyncAuthorizedEntries': AGENT,
  // The trust bundle is public information; any authenticated caller of this trust domain may read it.
  '/tessera.v1.BundleService/GetBundle': ['agent', 'workload', 'admin', 'local-admin'],
  '/tessera.v1.AuthorityService/GetAuthorities': ADMIN,
  '/tessera.v1.AuthorityService/PrepareAuthority': ADMIN,
  '/tessera.v1.AuthorityService/ActivateAuthority': ADMIN,
  '/tessera.v1.AuthorityService/TaintAuthority': ADMIN,
  '/tessera.v1.AuthorityService/RevokeAuthority': ADMIN,
  '/tessera.v1.AuditService/ListAuditRecords': ADMIN,
  '/tessera.v1.AuditService/VerifyAuditLog': ADMIN,
  '/tessera.v1.AuditService/FollowAuditRecords': ADMIN,
  '/tessera.v1.ServerService/GetStatus': ADMIN,
  '/tessera.v1.StsService/AddIssuer': ADMIN,
  '/tessera.v1.StsService/ListIssuers': ADMIN,
  '/tessera.v1.StsService/GetIssuer': ADMIN,
  '/tessera.v1.StsService/RemoveIssuer': ADMIN,
  '/tessera.v1.StsService/CreateTrustPolicy': ADMIN,
  '/tessera.v1.StsService/ListTrustPolicies': ADMIN,
  '/tessera.v1.StsService/GetTrustPolicy': ADMIN,
  '/tessera.v1.StsService/DeleteTrustPolicy': ADMIN,
  '/tessera.v1.StsService/TestTrustPolicy': ADMIN,
  '/tessera.v1.FederationService/CreateFederationRelationship': ADMIN,
  '/tessera.v1.FederationService/ListFederationRelationships': ADMIN,
  '/tessera.v1.FederationService/GetFederationRelationship': ADMIN,
  '/tessera.v1.FederationService/UpdateFederationRelationship': ADMIN,
  '/tessera.v1.FederationService/DeleteFederationRelationship': ADMIN,
  '/tessera.v1.FederationService/RefreshFederationRelationship': ADMIN,
  '/tessera.v1.SecretService/PutSecret': ADMIN,
  '/tessera.v1.SecretService/ListSecrets': ADMIN,
  '/tessera.v1.SecretService/GetSecret': ADMIN,
  '/tessera.v1.SecretService/RotateSecret': ADMIN,
  '/tessera.v1.SecretService/DeleteSecret': ADMIN,
  '/tessera.v1.SecretService/RotateKeyEncryptionKey': ADMIN,
  '/tessera.v1.BundleService/SetFederatedBundle': ADMIN,
  '/tessera.v1.BundleService/ListFederatedBundles': ADMIN,
  '/tessera.v1.BundleService/DeleteFederatedBundle': ADMIN,
  '/tessera.v1.ServerWorkloadService/CreateServerWorkload': ADMIN,
  '/tessera.v1.ServerWorkloadService/ListServerWorkloads': ADMIN,
  '/tessera.v1.ServerWorkloadService/GetServerWorkload': ADMIN,
  '/tessera.v1.ServerWorkloadService/UpdateServerWorkload': ADMIN,
  '/tessera.v1.ServerWorkloadService/DeleteServerWorkload': ADMIN,
  '/tessera.v1.CredentialProviderService/CreateCredentialProvider': ADMIN,
  '/tessera.v1.CredentialProviderService/ListCredentialProviders': ADMIN,
  '/tessera.v1.CredentialProviderService/GetCredentialProvider': ADMIN,
  '/tessera.v1.CredentialProviderService/DeleteCredentialProvider': ADMIN,
  '/tessera.v1.AccessPolicyService/CreateAccessPolicy': ADMIN,
  '/tessera.v1.AccessPolicyService/ListAccessPolicies': ADMIN,
  '/tessera.v1.AccessPolicyService/GetAccessPolicy': ADMIN,
  '/tessera.v1.AccessPolicyService/UpdateAccessPolicy': ADMIN,
  '/tessera.v1.AccessPolicyService/DeleteAccessPolicy': ADMIN,
  '/tessera.v1.AccessPolicyService/ImportAccessDocument': ADMIN,
  '/tessera.v1.AccessPolicyService/TestAccess': ADMIN,
  '/tessera.v1.AccessPolicyService/WhatIfAccess': ADMIN,
  // Agents ask on behalf of workloads they attested; the broker re-checks the entry is theirs.
  '/tessera.v1.CredentialReleaseService/ReleaseCredential': AGENT,
  '/tessera.v1.CredentialReleaseService/ListGrantedServerWorkloads': AGENT,
  '/tessera.v1.CredentialReleaseService/ListAgentServerWorkloads': AGENT,
  '/tessera.v1.CredentialReleaseService/ReportCachedUses': AGENT,
};

export function isAllowed(path: string, caller: Caller): boolean {
  // Own properties only: a path like "__proto__" or "toString" must be denied, not looked up.
  const rule = Object.hasOwn(authzTable, path) ? authzTable[path] : undefined;
  return rule !== undefined && rule.includes(caller.kind);
}
