// The server's composition root: the only place that reads config files and the environment,
// and the only place that creates infrastructure. Everything else receives what it needs.
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import type { Clock } from '../../core/clock.ts';

import { TrustDomain, serverId as serverSpiffeId } from '../../core/spiffe-id.ts';
import { writeFileAtomic } from '../../crypto/keys/atomic-write.ts';
import { isKeyFileName } from '../../crypto/keys/disk-key-manager.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import type { ApiServices } from '../api/router.ts';
import { openListeners, type ListenerAddresses, type OpenListeners } from './listeners.ts';
import { Auditor } from '../audit/auditor.ts';
import {
  AUDIT_SINKS_DIR,
  buildAudit,
  isAuditFileName,
  isCursorFileName,
  type AuditOutside,
} from './audit.ts';
import type { AuthorityManager } from '../authority/authority-manager.ts';
import type { BundleCache } from '../authority/bundle-cache.ts';
import type { FederatedBundleCache } from '../authority/federated-bundle-cache.ts';
import type { ServerConfig } from './config/compile.ts';
import { lockDataDir, type DataDirLock } from '../../plugins/data-dir-lock.ts';
import { tidyDataDir } from '../../plugins/data-dir-tidy.ts';
import { ChangeFollower } from '../sync/change-follower.ts';
import { type FollowedChanges, followChanges } from '../sync/follow-changes.ts';
import { EntryIndex } from '../registration/entry-index.ts';
import { createServerMetrics, type ServerMetrics } from './metrics.ts';
import type { ServerSvid } from '../authority/server-svid.ts';
import type { TokenExchange } from '../sts/exchange.ts';
import type { TokenIntrospection } from '../sts/introspection.ts';
import { buildApiServices, buildSts, buildStsRegistry } from './services.ts';
import { buildAccessDecisions, type AccessDecisions } from './access-decide.ts';
import { type BrokerParts, buildBroker } from './broker.ts';
import type { StsRegistry } from '../sts/registry.ts';
import { runTasks, type Task } from './tasks.ts';
import { applyFederationConfig, buildFederation } from './federation.ts';
import type { FederationService } from '../federation/federation-service.ts';
import { buildSecretStore, kekTidyDirs } from './secrets.ts';
import { buildAuthority, KEYS_DIR } from './authority.ts';

export { VERSION } from '../../core/defaults.ts';
/** In the data directory: this server's id, and the disk key manager's keys. */
const SERVER_ID_FILE = 'server-id';
export { defaultServerDataDir, loadServerConfig, type ServerRunFlags } from './config/load.ts';
import { logDestination } from './config/load.ts';
import { LOG_REDACT_PATHS } from '../../core/log-text.ts';
export const systemClock: Clock = { now: () => Date.now() };

export interface TesseraServerOptions {
  clock?: Clock;
  logger?: Logger;
  /** Timer periods, shortened by tests. */
  rotationIntervalMs?: number;
  syncIntervalMs?: number;
}

type Timing = { clock: Clock; rotationIntervalMs: number; syncIntervalMs: number };

/** What the server logs when it listens but cannot sign (an authority key is missing). */
export const NOT_READY =
  'tessera server listening, not ready: it cannot sign until its authority is restored or replaced (see /readyz, tessera healthcheck)';

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
  readonly #entrySync: FollowedChanges;
  readonly #serverSvid: ServerSvid;
  readonly #services: ApiServices;
  readonly #tokenExchange: TokenExchange | undefined;
  readonly #introspection: TokenIntrospection | undefined;
  readonly #registry: StsRegistry;
  readonly #lock: DataDirLock;
  readonly #audit: AuditOutside;
  readonly #access: BrokerParts;
  readonly #o: Timing;
  #ready = false;

  private constructor(
    config: ServerConfig,
    parts: {
      store: Store;
      authorities: AuthorityManager;
      bundles: BundleCache;
      federatedBundles: FederatedBundleCache;
      index: EntryIndex;
      metrics: ServerMetrics;
      log: Logger;
      entrySync: FollowedChanges;
      serverSvid: ServerSvid;
      services: ApiServices;
      tokenExchange: TokenExchange | undefined;
      introspection: TokenIntrospection | undefined;
      registry: StsRegistry;
      federation: FederationService;
      lock: DataDirLock;
      audit: AuditOutside;
      accessDecisions: AccessDecisions;
      access: BrokerParts;
    },
    o: Timing,
  ) {
    this.config = config;
    this.store = parts.store;
    this.authorities = parts.authorities;
    this.bundles = parts.bundles;
    this.federatedBundles = parts.federatedBundles;
    this.index = parts.index;
    this.metrics = parts.metrics;
    this.log = parts.log;
    this.#entrySync = parts.entrySync;
    this.#serverSvid = parts.serverSvid;
    this.#services = parts.services;
    this.#tokenExchange = parts.tokenExchange;
    this.#introspection = parts.introspection;
    this.#registry = parts.registry;
    this.federation = parts.federation;
    this.#lock = parts.lock;
    this.#audit = parts.audit;
    this.accessDecisions = parts.accessDecisions;
    this.#access = parts.access;
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
    // Before anything reads or writes the data directory (server id, keys, SQLite, admin socket):
    // a second process on the same directory stops here, naming the holder.
    const lock = lockDataDir(config.data_dir);
    let store: Store | null = null;
    try {
      // The files this server replaces atomically: temp files of a write a crash cut short.
      await tidyDataDir(
        lock,
        [
          { dir: lock.dir, isOurs: (name) => name === SERVER_ID_FILE || isAuditFileName(name) },
          { dir: path.join(lock.dir, KEYS_DIR), isOurs: isKeyFileName },
          { dir: path.join(lock.dir, AUDIT_SINKS_DIR), isOurs: isCursorFileName },
          ...kekTidyDirs(config),
        ],
        log,
      );
      const serverId = await readOrCreateServerId(config.data_dir);
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
      const { authorities, bundles, federatedBundles, minter, serverSvid } = await buildAuthority(
        config,
        { store, auditor, clock, serverId, td, metrics, log },
      );
      const index = new EntryIndex(serverSpiffeId(td).toString());
      const follower = await ChangeFollower.start(store, index, clock);
      // A committed change wakes the follower at once; the entry-sync task polls as a fallback.
      const entrySync = followChanges(store.notifications, follower, {
        onError: (e) =>
          log.warn({ err: e }, 'entry sync after a commit notification failed; polling retries'),
        onWake: (source) => metrics.changeNotifications.inc({ source }),
      });
      // A missing or wrong KEK file stops the start here, naming the file (compose/secrets.ts).
      const secrets = await buildSecretStore(config, { store, auditor, clock, serverId });
      const registry = await buildStsRegistry(config, {
        trustDomain: td.name,
        store,
        clock,
        warn: (msg, fields) => log.warn(fields, msg),
      });
      const federation = buildFederation(config, {
        store,
        auditor,
        clock,
        log,
        registry: metrics.registry,
      });
      // A bundle stored here (fetched, set by hand, or from the config) reaches agents at once.
      federation.manager.onBundleUpdated(() => {
        federatedBundles.refresh().catch((e: unknown) => {
          log.warn({ err: e }, 'federated bundle cache refresh failed; the periodic one retries');
        });
      });
      await applyFederationConfig(config, federation);
      const { tokenExchange, introspection } = buildSts(config, {
        trustDomain: td.name,
        minter,
        authorities,
        auditor,
        clock,
        bundles,
        store,
        registry,
      });
      const accessDecisions = await buildAccessDecisions({ store, clock, log });
      // Credential release, revocation and the access revision pushed to agents.
      const access = await buildBroker({
        config,
        store,
        auditor,
        clock,
        minter,
        index,
        log,
        access: { secrets, decider: accessDecisions.decider },
      });
      const services = buildApiServices({
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
        secrets,
        accessDecisionHandlers: accessDecisions.handlers,
        access,
      });
      // Checkpoints of the head and SIEM export (compose/audit.ts).
      const audit = await buildAudit(config, {
        store,
        auditor,
        clock,
        log,
        registry: metrics.registry,
        serverId,
      });
      const server = new TesseraServer(
        config,
        {
          store,
          authorities,
          bundles,
          federatedBundles,
          index,
          metrics,
          log,
          entrySync,
          serverSvid,
          services,
          tokenExchange,
          introspection,
          registry,
          federation,
          lock,
          audit,
          accessDecisions,
          access,
        },
        {
          clock,
          rotationIntervalMs: options.rotationIntervalMs ?? 10_000,
          syncIntervalMs: options.syncIntervalMs ?? 250,
        },
      );
      // What `tessera healthcheck` reads: listening, and able to sign (as /readyz, without the
      // datastore round trip).
      services.status.ready = () => server.#ready && server.#canSign();
      return server;
    } catch (e) {
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
      this.#entrySync.stop();
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
    this.#audit.start();
    try {
      await Promise.all([
        runTasks(signal, [...this.#tasks(), ...this.#audit.tasks], (name, e) => {
          this.log.warn(
            { task: name, err: e instanceof Error ? e.message : e },
            'background task failed; retrying',
          );
        }),
        // The lease sweeper: expired, abandoned and failed lease endings (compose/broker.ts).
        this.#access.run(signal),
      ]);
    } finally {
      this.#ready = false;
      this.#entrySync.stop();
      await listeners.close();
      await this.#release();
      this.log.info('tessera server stopped');
    }
  }

  /** Closes the store and releases the data directory (for a server created but never run, too). */
  async close(): Promise<void> {
    this.#entrySync.stop();
    await this.#release();
  }

  async #release(): Promise<void> {
    try {
      // The export sinks stop and the shutdown checkpoint is written while the store is open.
      await this.#audit.stop();
      await this.#access.close();
      await this.store.close();
    } finally {
      this.#lock.release();
    }
  }

  #openListeners(): Promise<OpenListeners> {
    return openListeners({
      config: this.config,
      store: this.store,
      bundles: this.bundles,
      index: this.index,
      services: this.#services,
      serverSvid: this.#serverSvid,
      tokenExchange: this.#tokenExchange,
      introspection: this.#introspection,
      metrics: this.metrics,
      log: this.log,
      clock: this.#o.clock,
      checkReady: () => this.#checkReady(),
    });
  }

  #tasks(): Task[] {
    return [
      {
        name: 'rotation',
        everyMs: this.#o.rotationIntervalMs,
        run: async () => {
          await this.authorities.rotate();
          await this.bundles.refresh();
          await this.#serverSvid.refresh();
        },
      },
      {
        name: 'federated-bundles',
        everyMs: this.config.federated_bundle_refresh_interval,
        run: () => this.federatedBundles.refresh().then(() => undefined),
      },
      {
        name: 'entry-sync',
        everyMs: this.#o.syncIntervalMs,
        run: () => this.#entrySync.poll(),
      },
      {
        // Issuers and trust policies changed through another server's admin API.
        name: 'sts-reload',
        everyMs: this.config.sts?.reload_interval ?? 5_000,
        run: () => this.#registry.poll(),
      },
      {
        // The fallback for a missed `access` notification (agents drop cached credentials).
        name: 'access-revision',
        everyMs: 1_000,
        run: () => this.#access.revisionFeed.refresh(),
      },
      {
        // The fallback for a missed posture import notification (agents re-check conditions).
        name: 'posture-revision',
        everyMs: 1_000,
        run: () => this.#access.posture.refresh(),
      },
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
      {
        // Each relationship is fetched when its stored next attempt is due, and bundle changes made
        // by other servers on the same datastore are reported (docs/federation.md).
        name: 'federation',
        everyMs: 1_000,
        run: () => this.federation.manager.tick(),
      },
      // Access policies changed through another server whose notification was lost.
      this.accessDecisions.task,
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

/** Written atomically: a crash while writing it never leaves an empty or torn id. */
async function readOrCreateServerId(dataDir: string): Promise<string> {
  const file = path.join(dataDir, SERVER_ID_FILE);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const id = randomUUID();
  await writeFileAtomic(file, id + '\n', 0o600);
  return id;
}
