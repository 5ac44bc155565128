// The agent's composition root: reads config and environment, builds the pieces, runs them.
//   attest (or reuse the persisted agent SVID) → sync entries and bundle from the server →
//   keep X.509-SVIDs minted and rotated → serve the Workload API on the Unix socket.
// While the server is away, workloads keep getting the cached SVIDs until they expire.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import { Code, ConnectError } from '@connectrpc/connect';
import type { Clock } from '../core/clock.ts';
import { DEFAULT_AGENT_DATA_DIR, DEFAULT_AGENT_SOCKET } from '../core/defaults.ts';
import { InvalidArgumentError } from '../core/errors.ts';
import { pemToDers } from '../crypto/x509/pem.ts';
import { parseSpiffeBundle } from '../crypto/bundle-format.ts';
import { parseConfigYaml, readConfigFile } from '../plugins/config-file.ts';
import { createWorkloadAttestors } from '../plugins/workload-attestors/catalog.ts';
import { Backoff, defaultSleep } from '../client/workload/backoff.ts';
import { JwtMintBatcher } from './cache/jwt-mint-batcher.ts';
import { JwtSvidCache } from './cache/jwt-svid-cache.ts';
import { AttestationService } from './attestation/attestation-service.ts';
import { SyncedEntryMatcher } from './attestation/entry-matcher.ts';
import { attestorsSource } from './attestation/workload-attestors.ts';
import { WorkloadIdentities } from './cache/workload-identities.ts';
import { X509SvidCache, type MintResult } from './cache/x509-svid-cache.ts';
import { type AgentConfig, compileAgentConfig } from './config/compile.ts';
import { AgentStateDir } from './identity/agent-identity.ts';
import {
  type AgentNodeAttestor,
  createAgentNodeAttestor,
} from '../plugins/node-attestors/catalog.ts';
import { msFromSeconds } from '../wire/time.ts';
import { AgentFatalError, ServerLink } from './identity/server-link.ts';
import { EntrySync } from './sync/entry-sync.ts';
import { CoalescingWriter, SyncStateFile } from './sync/sync-state-file.ts';
import { startWorkloadApi } from './workload-api/server.ts';

export const systemClock: Clock = { now: () => Date.now() };
const TICK_MS = 1000;
/** Sync state changes within this window are written to the data dir together. */
const SYNC_STATE_WRITE_DELAY_MS = 1000;

export interface AgentRunFlags {
  config?: string;
  server?: string;
  trustDomain?: string;
  socket?: string;
  dataDir?: string;
  joinToken?: string;
  x509popCert?: string;
  x509popKey?: string;
  trustBundle?: string;
  trustBundleUrl?: string;
  insecureBootstrap?: boolean;
}

/** Reads the config file and environment and applies flags. Used by `tessera agent run`. */
export function loadAgentConfig(flags: AgentRunFlags, env = process.env): AgentConfig {
  let file: Record<string, unknown> = {};
  if (flags.config) {
    file = parseConfigYaml(readConfigFile(flags.config), flags.config);
  }
  const x509pop =
    flags.x509popCert || flags.x509popKey
      ? { cert_file: flags.x509popCert, key_file: flags.x509popKey }
      : undefined;
  return compileAgentConfig(
    file,
    env,
    {
      server_address: flags.server,
      trust_domain: flags.trustDomain,
      socket_path: flags.socket,
      data_dir: flags.dataDir,
      join_token: flags.joinToken,
      x509pop,
      trust_bundle_file: flags.trustBundle,
      trust_bundle_url: flags.trustBundleUrl,
      insecure_bootstrap: flags.insecureBootstrap,
    },
    {
      dataDir: path.resolve(DEFAULT_AGENT_DATA_DIR),
      socketPath: path.resolve(DEFAULT_AGENT_SOCKET),
    },
  );
}

export interface TesseraAgentOptions {
  clock?: Clock;
  logger?: Logger;
  env?: Record<string, string | undefined>;
}

export class TesseraAgent {
  readonly config: AgentConfig;
  readonly log: Logger;
  readonly link: ServerLink;
  readonly sync: EntrySync;
  readonly x509: X509SvidCache;
  readonly identities: WorkloadIdentities;
  readonly attestation: AttestationService;
  readonly #state: AgentStateDir;
  readonly #stateWriter: CoalescingWriter;
  readonly #attestor: AgentNodeAttestor | null;
  readonly #clock: Clock;
  #fatal: AgentFatalError | null = null;
  #abort = new AbortController();

  private constructor(p: {
    config: AgentConfig;
    log: Logger;
    link: ServerLink;
    sync: EntrySync;
    x509: X509SvidCache;
    identities: WorkloadIdentities;
    attestation: AttestationService;
    state: AgentStateDir;
    stateWriter: CoalescingWriter;
    attestor: AgentNodeAttestor | null;
    clock: Clock;
  }) {
    this.config = p.config;
    this.log = p.log;
    this.link = p.link;
    this.sync = p.sync;
    this.x509 = p.x509;
    this.identities = p.identities;
    this.attestation = p.attestation;
    this.#state = p.state;
    this.#stateWriter = p.stateWriter;
    this.#attestor = p.attestor;
    this.#clock = p.clock;
  }

  static async create(
    config: AgentConfig,
    options: TesseraAgentOptions = {},
  ): Promise<TesseraAgent> {
    const clock = options.clock ?? systemClock;
    const log = options.logger ?? pino({ level: config.log_level }, pino.destination(2));
    if (config.insecure_bootstrap) {
      log.warn(
        'INSECURE BOOTSTRAP: the first connection to the server is not verified; use --trust-bundle in production',
      );
    }
    const state = new AgentStateDir(config.data_dir);
    await state.init();
    const link = new ServerLink({
      address: config.server_address,
      trustDomain: config.trust_domain,
      state,
    });
    const attestor = await createAgentNodeAttestor(config);
    let agent: TesseraAgent | null = null;
    const backoff = new Backoff({ initialMs: 250, maxMs: config.max_backoff });
    const stateFile = new SyncStateFile(config.data_dir, config.trust_domain);
    const sync = new EntrySync({
      clients: () => link.clients(),
      onRefused: (e) => (agent as TesseraAgent).#refused(e),
      onBundle: async (b) => {
        await link.setBundle(b.x509Authorities.map((a) => a.der));
        x509.setBundle(b);
      },
      backoff,
      log: (msg, fields) => log.warn(fields ?? {}, msg),
      trustDomain: config.trust_domain,
    });
    // Entries and bundles kept from the last run serve until the server answers (its initial
    // message decides what stays); a corrupt state file is reported and the agent starts empty.
    const restored = await stateFile.load().catch((e: unknown) => {
      log.error({ err: (e as Error).message }, 'ignoring the persisted sync state; starting empty');
      return null;
    });
    if (restored) {
      sync.restore(restored);
      log.info(
        { entries: restored.entries.size, federatedBundles: restored.federatedBundles.size },
        'restored the sync state from the data dir',
      );
    }
    const stateWriter = new CoalescingWriter({
      write: () =>
        stateFile.save({
          entries: sync.entries,
          bundle: sync.bundle,
          federatedBundles: sync.federatedBundles,
        }),
      delayMs: SYNC_STATE_WRITE_DELAY_MS,
      log: (msg, fields) => log.warn(fields ?? {}, msg),
    });
    sync.onChange(() => stateWriter.schedule());
    const x509 = new X509SvidCache({
      clock,
      maxSize: config.x509_svid_cache_max_size,
      mint: (params) => mintX509(link, params),
      log: (msg, fields) => log.warn(fields ?? {}, msg),
    });
    if (restored?.bundle) x509.setBundle(restored.bundle);
    const attestors = createWorkloadAttestors(config.workload_attestors, {
      procRoot: '/proc',
      env: options.env ?? process.env,
    });
    // Concurrent JWT-SVID cache misses go to the server together (BatchNewJWTSVID).
    const jwtMints = new JwtMintBatcher({
      mintBatch: async (items) => {
        const r = await link.clients().svid.batchNewJWTSVID({
          params: items.map((i) => ({ entryId: i.entryId, audience: [...i.audience] })),
        });
        return r.results.map((x) =>
          x.status && x.status.code !== ''
            ? { code: x.status.code, message: x.status.message }
            : { token: x.token, expiresAt: msFromSeconds(x.expiresAt) },
        );
      },
      mintOne: async ({ entryId, audience }) => {
        const r = await link.clients().svid.newJWTSVID({ entryId, audience: [...audience] });
        return { token: r.token, expiresAt: msFromSeconds(r.expiresAt) };
      },
    });
    const attestation = new AttestationService({
      selectors: attestorsSource(attestors),
      entries: new SyncedEntryMatcher(sync, clock),
      clock,
      log,
    });
    const identities = new WorkloadIdentities({
      trustDomain: config.trust_domain,
      sync,
      x509,
      jwt: new JwtSvidCache(clock, config.jwt_svid_cache_max_size),
      clock,
      allowedForeignJwtClaims: config.allowed_foreign_jwt_claims,
      mintJwt: (entryId, audience) => jwtMints.mint(entryId, audience),
    });
    agent = new TesseraAgent({
      config,
      log,
      link,
      sync,
      x509,
      identities,
      attestation,
      state,
      stateWriter,
      attestor,
      clock,
    });
    await agent.#bootstrap();
    return agent;
  }

  /** Serves until `signal` aborts (resolves) or the agent cannot continue (rejects AgentFatalError). */
  async run(signal: AbortSignal, onReady?: (socketPath: string) => void): Promise<void> {
    const stop = AbortSignal.any([signal, this.#abort.signal]);
    const api = await startWorkloadApi({
      socketPath: this.config.socket_path,
      source: this.identities,
      attestation: this.attestation,
      maxConnections: this.config.workload_api_max_connections,
      maxConnectionsPerUid: this.config.workload_api_max_connections_per_uid,
      prefaceTimeoutMs: this.config.workload_api_preface_timeout,
      log: this.log,
    });
    this.log.info(
      { spiffeId: this.link.identity?.spiffeId, socket: this.config.socket_path },
      'tessera agent ready',
    );
    onReady?.(this.config.socket_path);
    try {
      await Promise.all([this.sync.run(stop), this.#maintain(stop)]);
    } finally {
      await api.close();
      this.link.close();
      await this.#stateWriter.close();
    }
    if (this.#fatal) throw this.#fatal;
  }

  /** Uses the persisted agent SVID when still valid; otherwise attests. */
  async #bootstrap(): Promise<void> {
    const saved = await this.#state.loadIdentity();
    const bundle = (await this.#state.loadBundle()) ?? (await this.#bootstrapBundle());
    this.link.restore(saved, bundle);
    if (saved && saved.expiresAt > this.#clock.now()) {
      this.log.info({ spiffeId: saved.spiffeId }, 'reusing the persisted agent SVID');
      return;
    }
    const why = saved ? 'the agent SVID has expired' : 'no agent SVID yet';
    // A server rate-limiting attestation (many nodes starting behind one address) is waited out
    // with backoff, a bounded number of times; every other failure ends the start as before.
    const backoff = new Backoff({ initialMs: 1000, maxMs: this.config.max_backoff });
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#attest(why);
        return;
      } catch (e) {
        if (!(e instanceof ConnectError) || e.code !== Code.ResourceExhausted || attempt >= 10)
          throw e;
        const ms = backoff.next();
        this.log.warn(
          { retryInMs: ms, reason: e.rawMessage },
          'attestation rate-limited; retrying',
        );
        await defaultSleep(ms, new AbortController().signal);
      }
    }
  }

  async #bootstrapBundle(): Promise<Uint8Array[]> {
    const c = this.config;
    if (c.trust_bundle_file)
      return readBundle(readFileSync(c.trust_bundle_file, 'utf8'), c.trust_domain);
    if (c.trust_bundle_url) {
      const res = await fetch(c.trust_bundle_url, {
        signal: AbortSignal.timeout(10_000),
        redirect: 'error',
      });
      if (!res.ok)
        throw new InvalidArgumentError(
          `trust_bundle_url: ${c.trust_bundle_url} answered ${res.status}`,
        );
      return readBundle(await res.text(), c.trust_domain);
    }
    return [];
  }

  async #attest(why: string): Promise<void> {
    if (!this.#attestor) {
      throw new AgentFatalError(`cannot attest (${why}): configure join_token or x509pop`);
    }
    this.log.info({ attestor: this.#attestor.type, why }, 'attesting to the server');
    try {
      const id = await this.link.attest(
        this.#attestor,
        this.config.insecure_bootstrap && this.link.bundle.length === 0,
      );
      this.log.info({ spiffeId: id.spiffeId }, 'attested');
    } catch (e) {
      const ce = e as ConnectError;
      if (ce.code === Code.PermissionDenied || ce.code === Code.InvalidArgument) {
        throw new AgentFatalError(`node attestation refused: ${ce.rawMessage ?? ce.message}`, {
          cause: e,
        });
      }
      throw e;
    }
  }

  /** The server refused the agent: re-attest when evicted and allowed, else stop. */
  async #refused(e: ConnectError): Promise<void> {
    if (/banned/.test(e.rawMessage) || !this.#attestor?.canReattest) {
      this.#fail(new AgentFatalError(`the server refused this agent: ${e.rawMessage}`));
      return;
    }
    await this.#attest(e.rawMessage).catch((err: unknown) => {
      if (err instanceof AgentFatalError) this.#fail(err);
      else this.log.warn({ err: (err as Error).message }, 're-attestation failed; will retry');
    });
  }

  #fail(e: AgentFatalError): void {
    this.log.error(e.message);
    this.#fatal = e;
    this.#abort.abort();
  }

  /** Once a second: renew the agent SVID at half-life, re-attest when it expired, rotate SVIDs. */
  async #maintain(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await defaultSleep(TICK_MS, signal);
      if (signal.aborted) return;
      try {
        await this.#tick();
      } catch (e) {
        const ce = e as ConnectError;
        if (ce.code === Code.PermissionDenied || ce.code === Code.Unauthenticated)
          await this.#refused(ce);
        else this.log.warn({ err: (e as Error).message }, 'maintenance failed; will retry');
      }
    }
  }

  async #tick(): Promise<void> {
    const id = this.link.identity;
    const now = this.#clock.now();
    if (!id || id.expiresAt <= now) {
      if (this.#attestor?.canReattest) await this.#attest('the agent SVID has expired');
      else
        this.#fail(
          new AgentFatalError(
            'the agent SVID has expired and join tokens cannot re-attest: use a new token',
          ),
        );
      return;
    }
    if (now >= id.notBefore + (id.expiresAt - id.notBefore) / 2) {
      const renewed = await this.link.renew();
      this.log.info(
        { expiresAt: new Date(renewed.expiresAt).toISOString() },
        'renewed the agent SVID',
      );
    }
    if (this.sync.synced) await this.x509.refresh(this.sync.entries);
  }
}

async function mintX509(
  link: ServerLink,
  params: { entryId: string; csr: Uint8Array }[],
): Promise<MintResult[]> {
  const res = await link.clients().svid.batchNewX509SVID({ params });
  return res.results.map((r, i): MintResult => {
    const entryId = params[i]?.entryId ?? r.entryId;
    return r.status?.code
      ? { entryId, ok: false, reason: r.status.message }
      : { entryId, ok: true, chainDer: r.svidChain };
  });
}

/** A trust bundle file or URL body: PEM certificates or a SPIFFE bundle (JSON). */
function readBundle(text: string, trustDomain: string): Uint8Array[] {
  const ders = text.trimStart().startsWith('{')
    ? parseSpiffeBundle(text, trustDomain).x509Authorities.map((a) => a.der)
    : pemToDers(text);
  if (ders.length === 0) throw new InvalidArgumentError('trust bundle: no CA certificates found');
  return ders;
}
