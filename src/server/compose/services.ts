// Wiring of the server's services for the composition root (compose/server.ts): what each API service
// is built from. No I/O here: node attestors read their own files (plugins/node-attestors).
import type { Clock } from '../../core/clock.ts';
import { VERSION } from '../../core/defaults.ts';
import type { TrustDomain } from '../../core/spiffe-id.ts';
import type { NodeAttestor } from '../../plugins/node-attestors/node-attestor.ts';
import type { Store } from '../../store/types.ts';
import type { ApiServices } from '../api/router.ts';
import { AgentService } from '../attestation/agent-service.ts';
import { AttestationService } from '../attestation/attestation-service.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { AuthorityManager } from '../authority/authority-manager.ts';
import type { BundleCache } from '../authority/bundle-cache.ts';
import type { FederatedBundleCache } from '../authority/federated-bundle-cache.ts';
import type { ServerConfig } from './config/compile.ts';
import type { EntryIndex } from '../registration/entry-index.ts';
import type { FederationService } from '../federation/federation-service.ts';
import type { SecretStoreService } from '../broker/secret-store.ts';
import type { ServerMetrics } from './metrics.ts';
import { EntryService } from '../registration/entry-service.ts';
import type { TokenExchange } from '../sts/exchange.ts';
import { StsAdmin } from '../sts/admin.ts';
import type { StsRegistry } from '../sts/registry.ts';
import type { Minter } from '../svid/minter.ts';
import { SvidService } from '../svid/svid-service.ts';
import { IdentityDocumentService } from '../svid/identity-document.ts';
import { buildAccessModel } from '../access/access-model.ts';
import { validateCredentialProviderConfig } from '../../plugins/credential-providers/catalog.ts';
import { checkAccessPolicy } from '../access/check-policy.ts';
import type { AccessDecisionHandlers } from '../api/handlers/access-decision-handlers.ts';
import { agentServerWorkloads } from '../access/agent-server-workloads.ts';
import { CachedUseAudit } from '../broker/cached-uses.ts';
import type { BrokerParts } from './broker.ts';
import { PostureService } from '../posture/posture-service.ts';

export interface ServiceDeps {
  config: ServerConfig;
  td: TrustDomain;
  serverId: string;
  store: Store;
  auditor: Auditor;
  clock: Clock;
  minter: Minter;
  index: EntryIndex;
  bundles: BundleCache;
  federatedBundles: FederatedBundleCache;
  authorities: AuthorityManager;
  metrics: ServerMetrics;
  registry: StsRegistry;
  federation: FederationService;
  /** The token exchange, when configured: the dry run checks tokens exactly as it does. */
  tokenExchange: TokenExchange | undefined;
  /** The secret store (compose/secrets.ts), started: its KEKs checked. */
  secrets: SecretStoreService;
  /** TestAccess and WhatIfAccess (compose/access-decide.ts). */
  accessDecisionHandlers: AccessDecisionHandlers;
  /** Credential release, revocation and the access revision (compose/broker.ts). */
  access: BrokerParts;
  /** The node attestors' server halves (compose/node-attestors.ts). */
  nodeAttestors: ReadonlyMap<string, NodeAttestor>;
}

export function buildApiServices(d: ServiceDeps): ApiServices {
  const {
    config,
    td,
    serverId,
    store,
    auditor,
    clock,
    minter,
    index,
    bundles,
    federatedBundles,
    authorities,
    metrics,
    registry,
    federation,
    tokenExchange,
    access,
  } = d;
  const agents = new AgentService({
    store,
    auditor,
    clock,
    minter,
    trustDomain: td,
    agentSvidTtlMs: config.agent_svid_ttl,
    joinTokenTtlMs: config.join_token_ttl,
    revocation: access.revocation,
  });
  return {
    store,
    auditor,
    index,
    bundles,
    federatedBundles,
    authorities,
    agents,
    entries: new EntryService({
      store,
      auditor,
      clock,
      trustDomain: td,
      revocation: access.revocation,
    }),
    attestation: new AttestationService({
      store,
      auditor,
      clock,
      minter,
      trustDomain: td,
      attestors: d.nodeAttestors,
      agentSvidTtlMs: config.agent_svid_ttl,
    }),
    svids: new SvidService({
      auditor,
      clock,
      minter,
      index,
      trustDomain: td,
      defaultX509TtlMs: config.default_x509_svid_ttl,
      defaultJwtTtlMs: config.default_jwt_svid_ttl,
      onIssued: (kind, n) => metrics.issued.inc({ kind }, n),
      posture: access.posture,
    }),
    identityDocuments: new IdentityDocumentService({
      auditor,
      clock,
      minter,
      index,
      posture: access.posture,
      defaultJwtTtlMs: config.default_jwt_svid_ttl,
    }),
    sts: new StsAdmin({
      store,
      auditor,
      clock,
      registry,
      trustDomain: td.name,
      verifySubject: tokenExchange && ((t) => tokenExchange.verifySubject(t)),
      exchangeServed: tokenExchange !== undefined,
    }),
    status: {
      trustDomain: td.name,
      serverId,
      version: VERSION,
      startedAt: clock.now(),
      datastore: config.datastore.kind,
      ready: () => true,
      entryCount: () => index.size,
    },
    federation,
    secrets: d.secrets,
    accessDecisionHandlers: d.accessDecisionHandlers,
    accessModel: buildAccessModel({
      store,
      auditor,
      clock,
      validateProviderConfig: validateCredentialProviderConfig,
      secrets: d.secrets,
      checkPolicy: checkAccessPolicy,
      revocation: access.revocation,
    }),
    broker: access.broker,
    accessRevision: access.revisionFeed,
    posture: new PostureService({
      store,
      auditor,
      clock,
      onImported: () => void access.posture.refresh().catch(() => {}),
    }),
    postureRevision: access.posture,
    agentServerWorkloads: () => agentServerWorkloads(store),
    cachedUses: new CachedUseAudit({ entries: index, auditor, clock }),
  };
}
