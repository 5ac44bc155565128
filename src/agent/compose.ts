// The agent's composition root: reads config and environment, builds the pieces, runs them.
//   identity (identity/lifecycle.ts: reuse the persisted agent SVID or attest) → sync entries and
//   bundle from the server → keep X.509-SVIDs minted and rotated → serve the Workload API on the
//   Unix socket. While the server is away, workloads keep getting the cached SVIDs until expiry.
import pino, { type Logger } from 'pino';
import type { Clock } from '../core/clock.ts';
import {
  LOG_REDACT_PATHS,
  resolveLogFormat,
  textLogStream,
  type LogFormatSetting,
} from '../core/log-text.ts';
import { FailedPreconditionError, TesseraError } from '../core/errors.ts';
import { lockDataDir, type DataDirLock } from '../plugins/data-dir-lock.ts';
import { tidyDataDir } from '../plugins/data-dir-tidy.ts';
import type { AttestationService } from './attestation/attestation-service.ts';
import { kernelSocketHolders } from './attestation/kernel-socket-holders.ts';
import type { WorkloadIdentities } from './cache/workload-identities.ts';
import { ConditionVerdicts } from './cache/condition-verdicts.ts';
import type { X509SvidCache } from './cache/x509-svid-cache.ts';
import { type AgentConfig } from './config/compile.ts';
import { AGENT_STATE_FILES, AgentStateDir } from './identity/agent-identity.ts';
import { loadBootstrapBundle } from './identity/bootstrap-bundle.ts';
import { AgentLifecycle } from './identity/lifecycle.ts';
import { createAgentNodeAttestor } from '../plugins/node-attestors/catalog.ts';
import { ServerLink } from './identity/server-link.ts';
import type { EntrySync } from './sync/entry-sync.ts';
import type { CoalescingWriter } from './sync/sync-state-file.ts';
import { SYNC_STATE_FILE } from './sync/sync-state-file.ts';
import { startWorkloadApi, type WorkloadApi } from './workload-api/server.ts';
import { CredentialCache } from './cache/credential-cache.ts';
import { type CloudListener } from './cloud/cloud-listener.ts';
import { CredentialService } from './credentials/credential-service.ts';
import { type CredentialHttp } from './credentials/http-door.ts';
import { linkGrantedLister, linkReleaser } from './credentials/release-client.ts';
import { credentialSocketService } from './credentials/socket-service.ts';
import { linkDocumentSigner } from './documents/document-client.ts';
import { identityDocumentSocketService } from './documents/socket-service.ts';
import { PROXY_CA_FILES } from './proxy/http/proxy-ca.ts';
// For `tessera agent proxy rules` (the CLI imports only this root).
export { transparentRulesFromConfig } from './proxy/transparent/config-rules.ts';
import { ServerWorkloadSync } from './sync/server-workloads.ts';
import { startProxy, type RunningProxy } from './proxy/start-proxy.ts';
import { CachedUseReporter } from './proxy/cached-use-reporter.ts';
import { fetchServerWorkloads, sendCachedUses } from './proxy/server-calls.ts';

import { cloudTokenFiles, startCloudDoor, startHttpDoor } from './compose/doors.ts';
import { syncAndCache, workloadIdentities } from './compose/identity.ts';

export const systemClock: Clock = { now: () => Date.now() };
/** The `agent run` flag that sets the Workload API socket (named in listener errors). */
const SOCKET_FLAG = '--workload-socket';
/** Sync state changes within this window are written to the data dir together. */
/** Uses of cached credentials kept for the audit while the server is away; more are counted. */
const CACHED_USES_MAX_QUEUED = 10_000;

export { loadAgentConfig, type AgentRunFlags } from './compose/config.ts';

export interface TesseraAgentOptions {
  clock?: Clock;
  logger?: Logger;
  env?: Record<string, string | undefined>;
  /** Aborts the start (bootstrap, attestation): create() then rejects and leaves nothing open. */
  signal?: AbortSignal;
}

interface AgentParts {
  readonly config: AgentConfig;
  readonly log: Logger;
  readonly link: ServerLink;
  readonly sync: EntrySync;
  readonly x509: X509SvidCache;
  readonly identities: WorkloadIdentities;
  readonly attestation: AttestationService;
  readonly lifecycle: AgentLifecycle;
  readonly stateWriter: CoalescingWriter;
  readonly credentials: CredentialService;
  readonly serverWorkloads: ServerWorkloadSync;
  readonly cachedUses: CachedUseReporter;
}

export class TesseraAgent {
  readonly config: AgentConfig;
  readonly log: Logger;
  readonly link: ServerLink;
  readonly sync: EntrySync;
  readonly x509: X509SvidCache;
  readonly identities: WorkloadIdentities;
  readonly attestation: AttestationService;
  readonly credentials: CredentialService;
  /** The server workloads the proxy may reach (sync/server-workloads.ts). */
  readonly serverWorkloads: ServerWorkloadSync;
  readonly #cachedUses: CachedUseReporter;
  readonly #lifecycle: AgentLifecycle;
  readonly #stateWriter: CoalescingWriter;
  #lock: DataDirLock | null = null;

  private constructor(p: AgentParts) {
    this.config = p.config;
    this.log = p.log;
    this.link = p.link;
    this.sync = p.sync;
    this.x509 = p.x509;
    this.identities = p.identities;
    this.attestation = p.attestation;
    this.credentials = p.credentials;
    this.serverWorkloads = p.serverWorkloads;
    this.#cachedUses = p.cachedUses;
    this.#lifecycle = p.lifecycle;
    this.#stateWriter = p.stateWriter;
  }

  /** Locks the data directory first (a second agent on it refuses to start), then builds. */
  static async create(
    config: AgentConfig,
    options: TesseraAgentOptions = {},
  ): Promise<TesseraAgent> {
    const lock = lockDataDir(config.data_dir);
    try {
      const agent = await TesseraAgent.#build(config, options, lock);
      agent.#lock = lock;
      return agent;
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  static async #build(
    config: AgentConfig,
    options: TesseraAgentOptions,
    lock: DataDirLock,
  ): Promise<TesseraAgent> {
    const clock = options.clock ?? systemClock;
    const log =
      options.logger ??
      pino(
        { level: config.log_level, redact: [...LOG_REDACT_PATHS] },
        logDestination(config.log_format),
      );
    // The files this agent replaces atomically: temp files of a write a crash cut short.
    await tidyDataDir(
      lock,
      [
        {
          dir: lock.dir,
          isOurs: (name) =>
            AGENT_STATE_FILES.has(name) || name === SYNC_STATE_FILE || PROXY_CA_FILES.has(name),
        },
      ],
      log,
    );
    if (config.insecure_bootstrap) {
      log.warn(
        'INSECURE BOOTSTRAP: the first connection to the server is not verified; use --trust-bundle in production',
      );
    }
    const state = new AgentStateDir(config.data_dir);
    await state.init();
    const link = new ServerLink({
      addresses: config.server_address,
      onFailover: (from, to) =>
        log.warn({ from, to }, 'the server does not answer; using the next server address'),
      trustDomain: config.trust_domain,
      state,
    });
    const lifecycle = new AgentLifecycle({
      link,
      state,
      attestor: await createAgentNodeAttestor(config),
      clock,
      log,
      insecureBootstrap: config.insecure_bootstrap,
      maxBackoffMs: config.max_backoff,
      bootstrapBundle: (signal) =>
        loadBootstrapBundle(
          {
            trustDomain: config.trust_domain,
            file: config.trust_bundle_file,
            url: config.trust_bundle_url,
          },
          signal,
        ),
      onTick: async () => {
        if (sync.synced) await x509.refresh(sync.entries);
      },
    });
    // Released credentials: dropped when the sync stream says access data changed (or it
    // reconnects) and per client when its entry changes (cache/credential-cache.ts).
    const credentialCache = new CredentialCache({
      clock,
      maxSize: config.credentials.cache_max_size,
    });
    // Entry conditions: the server's answers, asked again when posture changes (docs/posture.md).
    const verdicts = new ConditionVerdicts({
      check: async (entryIds, attributes) =>
        (await link.clients().svid.checkEntryConditions({ entryIds: [...entryIds], attributes }))
          .results,
      log: (msg, fields) => log.info(fields ?? {}, msg),
    });
    let qualified: (entryId: string) => Readonly<Record<string, string>> | undefined = () =>
      undefined;
    const serverWorkloads = new ServerWorkloadSync({
      fetch: (signal) => fetchServerWorkloads(link, signal),
      maxRetryMs: config.max_backoff,
      log: (msg, fields) => log.warn(fields ?? {}, msg),
    });
    const cachedUses = new CachedUseReporter({
      send: (uses, dropped, signal) => sendCachedUses(link, uses, dropped, signal),
      clock,
      maxQueued: CACHED_USES_MAX_QUEUED,
      log: (msg, fields) => log.warn(fields ?? {}, msg),
    });
    const { sync, x509, stateWriter } = await syncAndCache(
      config,
      log,
      clock,
      link,
      lifecycle,
      credentialCache,
      verdicts,
      (entryId) => qualified(entryId),
      serverWorkloads,
    );
    sync.onChange(() => credentialCache.retainEntries(sync.entries));
    const credentials = new CredentialService({
      cache: credentialCache,
      release: linkReleaser(link, config.credentials.release_timeout),
      granted: linkGrantedLister(link, config.credentials.release_timeout),
    });
    const owners = await kernelSocketHolders();
    if ('reason' in owners) {
      log.info({ reason: owners.reason }, 'loopback callers found by walking /proc');
    } else {
      log.info({}, "loopback callers found by the kernel's file iterator");
    }
    const { identities, attestation } = workloadIdentities(
      config,
      { clock, log, link, sync, x509, verdicts, ...('reason' in owners ? {} : { owners }) },
      options.env,
    );
    qualified = (entryId) => identities.attributesFor(entryId);
    try {
      await lifecycle.bootstrap(options.signal ?? new AbortController().signal);
    } catch (e) {
      link.close();
      await stateWriter.close();
      throw e;
    }
    return new TesseraAgent({
      config,
      log,
      link,
      sync,
      x509,
      identities,
      attestation,
      lifecycle,
      stateWriter,
      credentials,
      serverWorkloads,
      cachedUses,
    });
  }

  /**
   * Serves until `signal` aborts (resolves) or the agent cannot continue (rejects
   * AgentFatalError). A Workload API socket that cannot be bound rejects at once, naming it.
   */
  #startCredentialHttp(): Promise<CredentialHttp | null> {
    return startHttpDoor(this);
  }

  async run(signal: AbortSignal, onReady?: (socketPath: string) => void): Promise<void> {
    const stop = AbortSignal.any([signal, this.#lifecycle.stopped]);
    let api: WorkloadApi | null = null;
    let credentialHttp: CredentialHttp | null = null;
    let cloud: CloudListener | null = null;
    let proxy: RunningProxy | null = null;
    try {
      if (stop.aborted) return;
      api = await startWorkloadApi({
        socketPath: this.config.socket_path,
        source: this.identities,
        attestation: this.attestation,
        maxConnections: this.config.workload_api_max_connections,
        maxConnectionsPerUid: this.config.workload_api_max_connections_per_uid,
        prefaceTimeoutMs: this.config.workload_api_preface_timeout,
        log: this.log,
        services: [
          credentialSocketService({
            attestation: this.attestation,
            credentials: this.credentials,
            log: this.log,
          }),
          // Signed identity documents: the server signs each one (docs/identity-document.md).
          identityDocumentSocketService({
            attestation: this.attestation,
            sign: linkDocumentSigner(this.link, this.config.credentials.release_timeout),
          }),
        ],
      }).catch((e: unknown) => {
        throw socketListenerError(e, this.config.socket_path);
      });
      credentialHttp = await this.#startCredentialHttp();
      cloud = await startCloudDoor(this);
      const tokenFiles = cloudTokenFiles(this);
      proxy = await startProxy({
        config: this.config.proxy,
        dataDir: this.config.data_dir,
        clock: systemClock,
        servers: () => this.serverWorkloads.index,
        attestation: this.attestation,
        credentials: this.credentials,
        log: this.log,
        signal: stop,
        onCachedUse: (caller, credential, wayIn, request) =>
          this.#cachedUses.record(caller, credential, wayIn, request),
      });
      this.log.info(
        { spiffeId: this.link.identity?.spiffeId, socket: this.config.socket_path },
        'tessera agent ready',
      );
      onReady?.(this.config.socket_path);
      await Promise.all([
        this.sync.run(stop),
        this.#lifecycle.maintain(stop),
        tokenFiles?.run(stop),
        this.serverWorkloads.run(stop),
        this.#cachedUses.run(stop),
      ]);
    } finally {
      await proxy?.close();
      await cloud?.close();
      await credentialHttp?.close();
      await api?.close();
      this.link.close();
      await this.#stateWriter.close();
      this.#lock?.release();
    }
    const fatal = this.#lifecycle.fatal;
    if (fatal) throw fatal;
  }
}

/** The log goes to stderr as JSON lines, or as text lines for a person (core/log-text.ts). */
function logDestination(setting: LogFormatSetting): pino.DestinationStream {
  const stderr = pino.destination(2);
  return resolveLogFormat(setting, process.stderr.isTTY === true) === 'text'
    ? textLogStream(stderr)
    : stderr;
}

/** The Workload API socket named by its flag and config key, for an operator to fix. */
function socketListenerError(e: unknown, socketPath: string): Error {
  const why = (e as Error).message ?? String(e);
  const message = `Workload API socket ${socketPath} (${SOCKET_FLAG}, config socket_path): cannot listen: ${why}`;
  if (e instanceof TesseraError) return new TesseraError(e.code, message, { cause: e });
  return new FailedPreconditionError(message, { cause: e });
}
