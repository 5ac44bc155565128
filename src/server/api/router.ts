// Registers every API service on a Connect router. Used by the listeners and by the
// authorization-completeness test, which enumerates what is registered here.
import type { ConnectRouter } from '@connectrpc/connect';
import { AgentService as AgentApi } from '../../../proto/gen/tessera/v1/agent_pb.js';
import { AuditService as AuditApi } from '../../../proto/gen/tessera/v1/audit_pb.js';
import { AuthorityService as AuthorityApi } from '../../../proto/gen/tessera/v1/authority_pb.js';
import { BundleService as BundleApi } from '../../../proto/gen/tessera/v1/bundle_pb.js';
import { EntryService as EntryApi } from '../../../proto/gen/tessera/v1/entry_pb.js';
import { ServerService as ServerApi } from '../../../proto/gen/tessera/v1/server_pb.js';
import { SvidService as SvidApi } from '../../../proto/gen/tessera/v1/svid_pb.js';
import { SyncService as SyncApi } from '../../../proto/gen/tessera/v1/sync_pb.js';
import { StsService as StsApi } from '../../../proto/gen/tessera/v1/sts_pb.js';
import type { AgentService } from '../attestation/agent-service.ts';
import type { AttestationService } from '../attestation/attestation-service.ts';
import type { AuthorityManager } from '../authority/authority-manager.ts';
import type { BundleCache } from '../authority/bundle-cache.ts';
import type { FederatedBundleCache } from '../authority/federated-bundle-cache.ts';
import type { EntryIndex } from '../registration/entry-index.ts';
import type { EntryService } from '../registration/entry-service.ts';
import type { SvidService } from '../svid/svid-service.ts';
import type { IdentityDocumentService } from '../svid/identity-document.ts';
import type { StoreAggregates } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';
import { agentHandlers } from './handlers/agent-handlers.ts';
import {
  auditHandlers,
  authorityHandlers,
  bundleHandlers,
  serverHandlers,
  type StatusSource,
} from './handlers/admin-handlers.ts';
import { entryHandlers } from './handlers/entry-handlers.ts';
import { svidHandlers } from './handlers/svid-handlers.ts';
import { syncHandlers } from './handlers/sync-handlers.ts';
import { stsHandlers } from './handlers/sts-handlers.ts';
import type { StsAdmin } from '../sts/admin.ts';
import { FederationService as FederationApi } from '../../../proto/gen/tessera/v1/federation_pb.js';
import type { FederationService } from '../federation/federation-service.ts';
import { federatedBundleHandlers, federationHandlers } from './handlers/federation-handlers.ts';
import { SecretService as SecretApi } from '../../../proto/gen/tessera/v1/secret_pb.js';
import type { SecretStoreService } from '../broker/secret-store.ts';
import { secretHandlers } from './handlers/secret-handlers.ts';
import {
  AccessPolicyService as AccessPolicyApi,
  CredentialProviderService as CredentialProviderApi,
  ServerWorkloadService as ServerWorkloadApi,
} from '../../../proto/gen/tessera/v1/access_pb.js';
import type { AccessModelServices } from '../access/access-model.ts';
import type { AccessDecisionHandlers } from './handlers/access-decision-handlers.ts';
import {
  accessPolicyModelHandlers,
  credentialProviderHandlers,
  serverWorkloadHandlers,
} from './handlers/access-handlers.ts';
import { CredentialReleaseService as ReleaseApi } from '../../../proto/gen/tessera/v1/release_pb.js';
import type { CredentialBroker } from '../broker/broker.ts';
import { releaseHandlers, type ReleaseServices } from './handlers/release-handlers.ts';
import type { AccessRevisionSource } from '../sync/agent-sync.ts';
import { PostureService as PostureApi } from '../../../proto/gen/tessera/v1/posture_pb.js';
import type { PostureService } from '../posture/posture-service.ts';
import { postureHandlers } from './handlers/posture-handlers.ts';

export interface ApiServices {
  /** Only the aggregates the handlers read directly; services hold their own ports. */
  store: Pick<StoreAggregates, 'nodes' | 'audit' | 'bundles'>;
  auditor: Auditor;
  entries: EntryService;
  agents: AgentService;
  attestation: AttestationService;
  svids: SvidService;
  /** Signed identity documents for attested workloads (docs/identity-document.md). */
  identityDocuments: IdentityDocumentService;
  authorities: AuthorityManager;
  bundles: BundleCache;
  federatedBundles: FederatedBundleCache;
  index: EntryIndex;
  status: StatusSource;
  /** Issuers and trust policies of the token exchange (always served; see docs/token-exchange.md). */
  sts: StsAdmin;
  federation: FederationService;
  /** The secret store (admin only; values are write-only). */
  secrets: SecretStoreService;
  /** Server workloads, credential providers, access policies and their import. */
  accessModel: AccessModelServices;
  /** TestAccess and WhatIfAccess over the live decider (compose/access-decide.ts). */
  accessDecisionHandlers: AccessDecisionHandlers;
  /** Credential release to agents (docs/access.md). */
  broker: Pick<CredentialBroker, 'release' | 'granted'>;
  /** The access revision sync streams push (sync/access-revision-feed.ts). */
  accessRevision: AccessRevisionSource;
  /** Scanner reports (docs/posture.md). */
  posture: PostureService;
  /** The posture revision sync streams push (posture/posture-index.ts). */
  postureRevision: AccessRevisionSource;
  /** The server workloads agents' proxies may reach (access/agent-server-workloads.ts). */
  agentServerWorkloads: ReleaseServices['serverWorkloads'];
  /** Audit of the credentials agents served from their caches (broker/cached-uses.ts). */
  cachedUses: ReleaseServices['cachedUses'];
}

export function registerServices(router: ConnectRouter, s: ApiServices): void {
  router.service(EntryApi, entryHandlers(s.entries));
  router.service(AgentApi, agentHandlers(s.attestation, s.agents, s.bundles));
  router.service(SvidApi, svidHandlers(s.svids, s.identityDocuments));
  router.service(
    SyncApi,
    syncHandlers(
      s.svids,
      s.index,
      s.bundles,
      s.federatedBundles,
      {
        get: (id) => s.store.nodes.get(id),
      },
      s.accessRevision,
      s.postureRevision,
    ),
  );
  router.service(BundleApi, {
    ...bundleHandlers(s.bundles),
    ...federatedBundleHandlers(s.federation),
  });
  router.service(AuthorityApi, authorityHandlers(s.authorities));
  router.service(AuditApi, auditHandlers(s.store.audit, s.auditor));
  router.service(ServerApi, serverHandlers(s.store.nodes, s.status));
  router.service(FederationApi, federationHandlers(s.store.bundles, s.federation));
  router.service(StsApi, stsHandlers(s.sts));
  router.service(SecretApi, secretHandlers(s.secrets));
  router.service(ServerWorkloadApi, serverWorkloadHandlers(s.accessModel));
  router.service(CredentialProviderApi, credentialProviderHandlers(s.accessModel));
  // TestAccess and WhatIfAccess: the decision room's handlers are spread in here too.
  router.service(AccessPolicyApi, {
    ...accessPolicyModelHandlers(s.accessModel),
    ...s.accessDecisionHandlers,
  });
  router.service(
    ReleaseApi,
    releaseHandlers({
      broker: s.broker,
      serverWorkloads: s.agentServerWorkloads,
      cachedUses: s.cachedUses,
    }),
  );
  router.service(PostureApi, postureHandlers(s.posture));
}
