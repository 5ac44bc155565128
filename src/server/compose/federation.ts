// Wiring of federation for the composition root (compose/server.ts): reads the files the `federation`
// config block names (extra CA for https_web, initial trust bundles) and builds the manager and
// the admin service. Config relationships are applied by `applyFederationConfig` at start;
// `startFederation` does both, feeds stored bundles to the federated bundle cache and names the
// periodic tasks.
import { readFileSync } from 'node:fs';
import { Counter, type Registry } from 'prom-client';
import type { Clock } from '../../core/clock.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { pemToDers } from '../../crypto/x509/pem.ts';
import type { Store } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { FederatedBundleCache } from '../authority/federated-bundle-cache.ts';
import type { ServerConfig } from './config/compile.ts';
import { defaultFetchLimits } from '../federation/endpoint-client.ts';
import { type FederationLog, FederationManager } from '../federation/federation-manager.ts';
import { type ConfigRelationship, FederationService } from '../federation/federation-service.ts';
import type { Task } from './tasks.ts';

export interface FederationDeps {
  store: Store;
  auditor: Auditor;
  clock: Clock;
  log: FederationLog;
  /** The server's metrics registry: `tessera_federation_fetches_total` is added to it. */
  registry: Registry;
}

export interface FederationLayer {
  readonly service: FederationService;
  /** The federated bundle cache's refresh and the relationships' due fetches. */
  readonly tasks: readonly Task[];
}

/** Builds federation, applies the config's relationships and names its periodic tasks. */
export async function startFederation(
  config: ServerConfig,
  d: FederationDeps & { federatedBundles: FederatedBundleCache },
): Promise<FederationLayer> {
  const service = buildFederation(config, d);
  // A bundle stored here (fetched, set by hand, or from the config) reaches agents at once.
  service.manager.onBundleUpdated(() => {
    d.federatedBundles.refresh().catch((e: unknown) => {
      d.log.warn({ err: e }, 'federated bundle cache refresh failed; the periodic one retries');
    });
  });
  await applyFederationConfig(config, service);
  return {
    service,
    tasks: [
      {
        name: 'federated-bundles',
        everyMs: config.federated_bundle_refresh_interval,
        run: () => d.federatedBundles.refresh().then(() => undefined),
      },
      {
        // Each relationship is fetched when its stored next attempt is due, and bundle changes made
        // by other servers on the same datastore are reported (docs/federation.md).
        name: 'federation',
        everyMs: 1_000,
        run: () => service.manager.tick(),
      },
    ],
  };
}

export function buildFederation(config: ServerConfig, d: FederationDeps): FederationService {
  const f = config.federation;
  const extraCaPem = f?.ca_file ? [readCaFile(f.ca_file)] : [];
  const fetches = new Counter({
    name: 'tessera_federation_fetches_total',
    help: 'Federated bundle fetches by trust domain and outcome (updated, unchanged, ignored, failed)',
    labelNames: ['trust_domain', 'outcome'],
    registers: [d.registry],
  });
  const manager = new FederationManager({
    onFetched: (trustDomain, outcome) => fetches.inc({ trust_domain: trustDomain, outcome }),
    store: d.store,
    auditor: d.auditor,
    clock: d.clock,
    log: d.log,
    extraCaPem,
    trustDomain: config.trust_domain,
    limits: { ...defaultFetchLimits, timeoutMs: f?.fetch_timeout ?? defaultFetchLimits.timeoutMs },
  });
  return new FederationService({
    store: d.store,
    auditor: d.auditor,
    clock: d.clock,
    trustDomain: config.trust_domain,
    manager,
  });
}

/** Upserts the config's relationships (and deletes config ones no longer listed). */
export async function applyFederationConfig(
  config: ServerConfig,
  federation: FederationService,
): Promise<void> {
  const rels: ConfigRelationship[] = (config.federation?.relationships ?? []).map((r, i) => ({
    trustDomain: r.trust_domain,
    bundleEndpointUrl: r.bundle_endpoint_url,
    profile: r.profile,
    endpointSpiffeId: r.endpoint_spiffe_id,
    trustBundleFile: r.trust_bundle_file,
    trustBundle: r.trust_bundle_file
      ? readText(r.trust_bundle_file, `federation.relationships[${i}].trust_bundle_file`)
      : '',
  }));
  await federation.applyConfig(rels);
}

function readCaFile(file: string): string {
  const pem = readText(file, 'federation.ca_file');
  let count = 0;
  try {
    count = pemToDers(pem).length;
  } catch (e) {
    throw new InvalidArgumentError(`config: federation.ca_file: ${(e as Error).message}`);
  }
  if (count === 0) {
    throw new InvalidArgumentError(
      `config: federation.ca_file: "${file}" holds no PEM CERTIFICATE block`,
    );
  }
  return pem;
}

function readText(file: string, key: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new InvalidArgumentError(
      `config: ${key}: cannot read "${file}": ${(e as Error).message}`,
    );
  }
}
