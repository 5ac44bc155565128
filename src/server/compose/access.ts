// Wiring of the access layer for the composition root (compose/server.ts): the secret store
// (compose/secrets.ts), the access decisions (compose/access-decide.ts), the credential broker with
// its leases, revocation, access revision and posture index (compose/broker.ts), and the periodic
// fallbacks that keep them current when a commit notification is lost.
import type { Clock } from '../../core/clock.ts';
import type { Store } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { SecretStoreService } from '../broker/secret-store.ts';
import type { EntryIndex } from '../registration/entry-index.ts';
import type { Minter } from '../svid/minter.ts';
import { buildAccessDecisions, type AccessDecisions } from './access-decide.ts';
import { type BrokerDeps, type BrokerParts, buildBroker } from './broker.ts';
import type { ServerConfig } from './config/compile.ts';
import { buildSecretStore } from './secrets.ts';
import type { Task } from './tasks.ts';

export interface AccessLayer {
  /** The secret store, started: its KEKs checked. */
  readonly secrets: SecretStoreService;
  /** Access decisions: the live decider (the broker's) and its reload task. */
  readonly decisions: AccessDecisions;
  /** Credential release, revocation, the access revision and the posture index. */
  readonly broker: BrokerParts;
  /** The periodic fallbacks for missed `access`, posture and policy notifications. */
  readonly tasks: readonly Task[];
  /** The lease sweeper, until the signal aborts. */
  run(signal: AbortSignal): Promise<void>;
  /** Stops following changes and closes provider instances. */
  close(): Promise<void>;
}

export interface AccessDeps {
  store: Store;
  auditor: Auditor;
  clock: Clock;
  serverId: string;
  minter: Minter;
  index: EntryIndex;
  log: BrokerDeps['log'];
}

/**
 * Builds the access layer. A missing or wrong KEK file stops the start here, naming the file
 * (compose/secrets.ts); so does a datastore whose access policies cannot be read.
 */
export async function buildAccessLayer(config: ServerConfig, d: AccessDeps): Promise<AccessLayer> {
  const { store, auditor, clock, log } = d;
  const secrets = await buildSecretStore(config, { store, auditor, clock, serverId: d.serverId });
  const decisions = await buildAccessDecisions({ store, clock, log });
  const broker = await buildBroker({
    config,
    store,
    auditor,
    clock,
    minter: d.minter,
    index: d.index,
    log,
    access: { secrets, decider: decisions.decider },
  });
  return {
    secrets,
    decisions,
    broker,
    tasks: [
      {
        // The fallback for a missed `access` notification (agents drop cached credentials).
        name: 'access-revision',
        everyMs: 1_000,
        run: () => broker.revisionFeed.refresh(),
      },
      {
        // The fallback for a missed posture import notification (agents re-check conditions).
        name: 'posture-revision',
        everyMs: 1_000,
        run: () => broker.posture.refresh(),
      },
      // Access policies changed through another server whose notification was lost.
      decisions.task,
    ],
    run: (signal) => broker.run(signal),
    close: () => broker.close(),
  };
}
