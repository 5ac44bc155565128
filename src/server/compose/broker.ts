// Wiring of the credential broker for the composition root: the broker, the lease manager (ending
// leases through the broker's provider instances), revocation and the access revision the sync
// streams push. Server workloads and providers are read from the access store. The decider and
// the secret store are built by their own rooms and passed in as `access`; one not passed is a
// stand-in: no decider denies every release (no matching policy).
import { createCredentialProvider } from '../../plugins/credential-providers/catalog.ts';
import type { AccessDecider } from '../../core/access.ts';
import type { Clock } from '../../core/clock.ts';
import { FailedPreconditionError, NotFoundError } from '../../core/errors.ts';
import type {
  LeasePort,
  SecretReader,
} from '../../plugins/credential-providers/credential-provider.ts';
import type { Store } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';
import { type AccessRecords, CredentialBroker } from '../broker/broker.ts';
import { credentialMinting } from '../broker/minting.ts';
import { type LeaseEnder, Revocation } from '../broker/revocation.ts';
import type { ServerConfig } from './config/compile.ts';
import { LeaseManager } from '../broker/lease-manager.ts';
import type { EntryIndex } from '../registration/entry-index.ts';
import type { Minter } from '../svid/minter.ts';
import { AccessRevisionFeed } from '../sync/access-revision-feed.ts';
import { PostureIndex } from '../posture/posture-index.ts';
import { workloadFacts } from '../posture/workload-facts.ts';

/** What the other access rooms provide (server/access, server/broker secret store and leases). */
export interface AccessParts {
  readonly decider: AccessDecider;
  readonly records: AccessRecords;
  readonly secrets: SecretReader;
  readonly leases: LeasePort & LeaseEnder;
}

export interface BrokerParts {
  readonly broker: CredentialBroker;
  readonly revocation: Revocation;
  readonly revisionFeed: AccessRevisionFeed;
  /** Stored posture reports, in memory (entry conditions, access conditions, sync). */
  readonly posture: PostureIndex;
  readonly leases: LeaseManager;
  /** The lease sweeper, until the signal aborts (LeaseManager.run). */
  run(signal: AbortSignal): Promise<void>;
  /** Stops following the revision and closes provider instances. */
  close(): Promise<void>;
}

export interface BrokerDeps {
  config: Pick<ServerConfig, 'default_jwt_svid_ttl' | 'sts'>;
  store: Store;
  auditor: Auditor;
  clock: Clock;
  minter: Minter;
  index: EntryIndex;
  log: {
    warn(fields: Record<string, unknown>, msg: string): void;
    info(fields: Record<string, unknown>, msg: string): void;
  };
  /** The parts built so far; each missing one is a stand-in (NO_ACCESS). */
  access?: Partial<AccessParts>;
}

/** Stand-ins until the access model is wired: nothing is allowed, nothing is leased. */
const NO_ACCESS: AccessParts = {
  decider: {
    decide: () => ({
      allowed: false,
      reason: 'no-matching-policy',
      policy: '',
      credentialProvider: '',
      failedCondition: '',
    }),
  },
  records: { serverWorkload: async () => null, credentialProvider: async () => null },
  secrets: {
    read: (name) => Promise.reject(new NotFoundError(`secret "${name}" not found`)),
  },
  leases: {
    record: () => Promise.reject(new FailedPreconditionError('leases are not available')),
    activate: async () => false,
    endWhere: async () => 0,
  },
};

export async function buildBroker(d: BrokerDeps): Promise<BrokerParts> {
  const records: AccessRecords = {
    serverWorkload: (name) => d.store.access.getServerWorkload(name),
    credentialProvider: (name) => d.store.access.getCredentialProvider(name),
    listServerWorkloads: () => d.store.access.listServerWorkloads(),
  };
  // Leases end through the provider instance that released them (one per stored record).
  const leaseManager = new LeaseManager({
    leases: d.store.leases,
    clock: d.clock,
    audit: d.auditor,
    log: d.log,
    providerFor: async (name) => {
      const record = await records.credentialProvider(name);
      return record ? broker.providerFor(record) : undefined;
    },
  });
  const access: AccessParts = { ...NO_ACCESS, records, leases: leaseManager, ...d.access };
  const posture = await PostureIndex.start(d.store, (e) =>
    d.log.warn({ err: e }, 'posture read after a notification failed; polling retries'),
  );
  const broker = new CredentialBroker({
    entries: d.index,
    decider: access.decider,
    records: access.records,
    auditor: d.auditor,
    clock: d.clock,
    buildProvider: createCredentialProvider,
    providerDeps: {
      secrets: access.secrets,
      minting: credentialMinting(d.minter, {
        maxJwtTtlMs: d.config.default_jwt_svid_ttl,
        maxAccessTokenTtlMs: d.config.sts?.max_ttl ?? 3_600_000,
      }),
      leases: access.leases,
      now: () => d.clock.now(),
      fetch: globalThis.fetch,
    },
    log: (msg, fields) => d.log.warn(fields, msg),
    facts: (agent, attributes) => workloadFacts(attributes, agent, posture),
  });
  const revocation = new Revocation({
    leases: access.leases,
    revision: d.store.accessRevision,
    onRevoked: (scope, reason, ended) => {
      // A provider deleted or changed: its instance (pool, cached token) goes with it.
      if (scope.provider !== undefined) broker.forgetProvider(scope.provider);
      d.log.info({ scope, reason, leasesEnded: ended }, 'access revoked');
    },
  });
  const revisionFeed = await AccessRevisionFeed.start(d.store, (e) =>
    d.log.warn({ err: e }, 'access revision read after a notification failed; polling retries'),
  );
  return {
    broker,
    revocation,
    revisionFeed,
    posture,
    leases: leaseManager,
    run: (signal) => leaseManager.run(signal),
    async close() {
      revisionFeed.stop();
      posture.stop();
      await broker.close();
    },
  };
}
