// The server's composition root: the only place that reads config files and the environment,
// and the only place that creates infrastructure. Everything else receives what it needs. This
// file is the process's outline: what `create` builds in order, the tasks `run` keeps going, and
// how it stops; each part's wiring is a compose/ file of its own.
import pino, { type Logger } from 'pino';
import type { Clock } from '../../core/clock.ts';
import { LOG_REDACT_PATHS } from '../../core/log-text.ts';
import { TrustDomain } from '../../core/spiffe-id.ts';
import type { DataDirLock } from '../../plugins/data-dir-lock.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import type { ApiServices } from '../api/router.ts';
import { Auditor } from '../audit/auditor.ts';
import type { AuthorityManager } from '../authority/authority-manager.ts';
import type { BundleCache } from '../authority/bundle-cache.ts';
import type { FederatedBundleCache } from '../authority/federated-bundle-cache.ts';
import type { FederationService } from '../federation/federation-service.ts';
import type { EntryIndex } from '../registration/entry-index.ts';
import type { AccessDecisions } from './access-decide.ts';
import { type AccessLayer, buildAccessLayer } from './access.ts';
import { buildAudit, type AuditOutside } from './audit.ts';
import { type AuthorityParts, buildAuthority, rotationTask } from './authority.ts';
import { type EntrySync, startEntrySync } from './entry-sync.ts';
import type { ServerConfig } from './config/compile.ts';
import { logDestination } from './config/load.ts';
import { openDataDir } from './data-dir.ts';
import { type FederationLayer, startFederation } from './federation.ts';
import { openListeners, type ListenerAddresses, type OpenListeners } from './listeners.ts';
import { createServerMetrics, type ServerMetrics } from './metrics.ts';
import { buildApiServices } from './services.ts';
import { buildNodeAttestors, nodeRefreshTasks } from './node-attestors.ts';
import { type StsLayer, startSts } from './sts.ts';
import { runTasks, type Task } from './tasks.ts';

export { VERSION } from '../../core/defaults.ts';
export { defaultServerDataDir, loadServerConfig, type ServerRunFlags } from './config/load.ts';
export const systemClock: Clock = { now: () => Date.now() };

export interface TesseraServerOptions {
  clock?: Clock;
  logger?: Logger;
  /** Timer periods, shortened by tests. */
  rotationIntervalMs?: number;
  syncIntervalMs?: number;
}

type Timing = { clock: Clock; rotationIntervalMs: number };

/** What the server logs when it listens but cannot sign (an authority key is missing). */
export const NOT_READY =
  'tessera server listening, not ready: it cannot sign until its authority is restored or replaced (see /readyz, tessera healthcheck)';

/** What `create` builds, in the order it builds them; the server holds them until it stops. */
interface ServerParts {
  store: Store;
  lock: DataDirLock;
  authority: AuthorityParts;
  entrySync: EntrySync;
  metrics: ServerMetrics;
  log: Logger;
  sts: StsLayer;
  federation: FederationLayer;
  access: AccessLayer;
  services: ApiServices;
  audit: AuditOutside;
  /** Refresh of attested nodes' platform attributes (compose/node-attestors.ts). */
  nodeRefresh: Task[];
}

export class TesseraServer {
  readonly config: ServerConfig;
  readonly store: Store;
  readonly authorities: AuthorityManager;
  readonly bundles: BundleCache;
  /** Federated bundles; call `federatedBundles.refresh()` after storing one (see its file). */
  readonly federatedBundles: FederatedBundleCache;
  readonly index: EntryIndex;
  readonly metrics: ServerMetrics;
  readonly log: Logger;
  /** Federation relationships and foreign bundles; `federation.manager.onBundleUpdated(fn)`. */
  readonly federation: FederationService;
  /** Access decisions: the live decider (the broker's) and its reload task. */
  readonly accessDecisions: AccessDecisions;
  readonly #p: ServerParts;
  readonly #o: Timing;
  #ready = false;

  private constructor(config: ServerConfig, parts: ServerParts, o: Timing) {
    this.config = config;
    this.store = parts.store;
    this.authorities = parts.authority.authorities;
    this.bundles = parts.authority.bundles;
    this.federatedBundles = parts.authority.federatedBundles;
    this.index = parts.entrySync.index;
    this.metrics = parts.metrics;
    this.log = parts.log;
    this.federation = parts.federation.service;
    this.accessDecisions = parts.access.decisions;
    this.#p = parts;
    this.#o = o;
  }

  static async create(
    config: ServerConfig,
    options: TesseraServerOptions = {},
  ): Promise<TesseraServer> {
    const clock = options.clock ?? systemClock;
    const log =
      options.logger ??
      pino(
        { level: config.log_level, redact: [...LOG_REDACT_PATHS] },
        logDestination(config.log_format),
      );
    const td = TrustDomain.parse(config.trust_domain);
    // Before anything reads or writes the data directory (compose/data-dir.ts).
    const { lock, serverId } = await openDataDir(config, log);
    let store: Store | null = null;
    let access: AccessLayer | null = null;
    try {
      const metrics = createServerMetrics();
      store = await openStore(
        config.datastore.kind === 'sqlite'
          ? config.datastore
          : { kind: 'postgres', url: config.datastore.url, poolSize: config.datastore.poolSize },
        clock,
      );
      const auditor = new Auditor(clock, store, (action, outcome) =>
        metrics.audits.inc({ action, outcome }),
      );
      // What every part is built over.
      const base = { store, auditor, clock };
      const authority = await buildAuthority(config, { ...base, serverId, td, metrics, log });
      const { authorities, bundles, federatedBundles, minter } = authority;
      // The entry index the sync streams serve from, following commits (compose/entry-sync.ts).
      const entrySync = await startEntrySync({
        store,
        clock,
        td,
        metrics,
        log,
        everyMs: options.syncIntervalMs ?? 250,
      });
      const index = entrySync.index;
      // The secret store, access decisions, credential broker and posture (compose/access.ts).
      // A missing or wrong KEK file stops the start here, naming the file.
      access = await buildAccessLayer(config, { ...base, serverId, minter, index, log });
      // Issuers, trust policies, the token endpoint and introspection (compose/sts.ts).
      const sts = await startSts(config, {
        ...base,
        trustDomain: td.name,
        minter,
        authorities,
        bundles,
        warn: (msg, fields) => log.warn(fields, msg),
      });
      // Federation relationships and foreign bundles (compose/federation.ts).
      const federation = await startFederation(config, {
        ...base,
        log,
        registry: metrics.registry,
        federatedBundles,
      });
      // Node attestors' server halves: attestation, and the refresh of nodes' cloud attributes.
      const nodeAttestors = buildNodeAttestors(config, { store, clock });
      const services = buildApiServices({
        ...base,
        config,
        td,
        serverId,
        minter,
        index,
        bundles,
        federatedBundles,
        authorities,
        metrics,
        registry: sts.registry,
        federation: federation.service,
        tokenExchange: sts.tokenExchange,
        secrets: access.secrets,
        accessDecisionHandlers: access.decisions.handlers,
        access: access.broker,
        nodeAttestors,
      });
      // Checkpoints of the head and SIEM export (compose/audit.ts).
      const audit = await buildAudit(config, {
        ...base,
        log,
        registry: metrics.registry,
        serverId,
      });
      const server = new TesseraServer(
        config,
        {
          store,
          lock,
          authority,
          entrySync,
          metrics,
          log,
          sts,
          federation,
          access,
          services,
          audit,
          nodeRefresh: nodeRefreshTasks(nodeAttestors, { ...base, log }),
        },
        { clock, rotationIntervalMs: options.rotationIntervalMs ?? 10_000 },
      );
      // What `tessera healthcheck` reads: listening, and able to sign (as /readyz, without the
      // datastore round trip).
      services.status.ready = () => server.#ready && server.#canSign();
      return server;
    } catch (e) {
      await access?.close();
      await store?.close();
      lock.release();
      throw e;
    }
  }

  /** Serves until `signal` aborts; resolves after a clean shutdown. */
  async run(
    signal: AbortSignal,
    /** `ready`: able to sign now; false while an authority key is missing (see /readyz). */
    onListening?: (addresses: ListenerAddresses, ready: boolean) => void,
  ): Promise<void> {
    let listeners: OpenListeners;
    try {
      listeners = await this.#openListeners();
    } catch (e) {
      // Nothing stays half-started: openListeners closed what it had opened.
      this.#p.entrySync.changes.stop();
      await this.#release();
      throw e;
    }
    const addresses = listeners.addresses;
    this.#ready = true;
    // Ready means able to sign (as /readyz says): without an authority key it only listens, so
    // that the admin socket can take `tessera authority prepare/activate`.
    const canSign = this.#canSign();
    const fields = {
      ...addresses,
      issuer: this.config.jwt.issuer,
      trustDomain: this.config.trust_domain,
    };
    if (canSign) this.log.info(fields, 'tessera server ready');
    else this.log.warn(fields, NOT_READY);
    onListening?.(addresses, canSign);
    this.#p.audit.start();
    try {
      await Promise.all([
        runTasks(signal, [...this.#tasks(), ...this.#p.audit.tasks], (name, e) => {
          this.log.warn(
            { task: name, err: e instanceof Error ? e.message : e },
            'background task failed; retrying',
          );
        }),
        // The lease sweeper: expired, abandoned and failed lease endings (compose/broker.ts).
        this.#p.access.run(signal),
      ]);
    } finally {
      this.#ready = false;
      this.#p.entrySync.changes.stop();
      await listeners.close();
      await this.#release();
      this.log.info('tessera server stopped');
    }
  }

  /** Closes the store and releases the data directory (for a server created but never run, too). */
  async close(): Promise<void> {
    this.#p.entrySync.changes.stop();
    await this.#release();
  }

  async #release(): Promise<void> {
    try {
      // The export sinks stop and the shutdown checkpoint is written while the store is open.
      await this.#p.audit.stop();
      await this.#p.access.close();
      await this.store.close();
    } finally {
      this.#p.lock.release();
    }
  }

  #openListeners(): Promise<OpenListeners> {
    return openListeners({
      config: this.config,
      store: this.store,
      bundles: this.bundles,
      index: this.index,
      services: this.#p.services,
      serverSvid: this.#p.authority.serverSvid,
      tokenExchange: this.#p.sts.tokenExchange,
      introspection: this.#p.sts.introspection,
      metrics: this.metrics,
      log: this.log,
      clock: this.#o.clock,
      checkReady: () => this.#checkReady(),
    });
  }

  #tasks(): Task[] {
    return [
      rotationTask(this.#p.authority, this.#o.rotationIntervalMs),
      this.#p.entrySync.task,
      {
        name: 'prune',
        everyMs: 60_000,
        run: async () => {
          const now = this.#o.clock.now();
          await this.store.joinTokens.pruneExpired(now);
          await this.store.revokedTokens.pruneExpired(now);
          await this.store.changes.prune(now - 3_600_000);
          await this.store.dpopProofs.pruneExpired(now);
        },
      },
      // The federated bundle cache and the relationships' fetches (compose/federation.ts).
      ...this.#p.federation.tasks,
      // The registry's reload (compose/sts.ts).
      ...this.#p.sts.tasks,
      // The access layer's fallbacks for missed notifications (compose/access.ts).
      ...this.#p.access.tasks,
      // Nodes' cloud attributes re-read (aws_iid's ec2_api.refresh_interval).
      ...this.#p.nodeRefresh,
    ];
  }

  #canSign(): boolean {
    try {
      this.authorities.activeX509();
      this.authorities.activeJwt();
      return true;
    } catch {
      return false;
    }
  }

  async #checkReady(): Promise<void> {
    if (!this.#ready) throw new Error('starting or stopping');
    await this.store.ping();
    this.authorities.activeX509();
    this.authorities.activeJwt();
  }
}
