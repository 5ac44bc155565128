// The agent's own identity over its life: start from the persisted agent SVID or attest; renew
// at half-life (of the life left on arrival: core/svid-life.ts); attest again when the server
// refuses the SVID (evicted, unknown, superseded) or it expired, as far as the attestor allows;
// stop for good when banned or out of evidence.
//
// The server says why it refused as a reason code (core/refusal.ts); message text is never read.
import { Code, ConnectError } from '@connectrpc/connect';
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.ts';
import { type RefusalReason, refusalReasonIn } from '../../core/refusal.ts';
import { halfLifeAt } from '../../core/svid-life.ts';
import { Backoff, defaultSleep } from '../../client/workload/backoff.ts';
import type { AgentIdentity, AgentStateDir } from './agent-identity.ts';
import {
  builtinNodeAttestors,
  type AgentNodeAttestor,
} from '../../plugins/node-attestors/catalog.ts';
import { AgentFatalError, type ServerLink } from './server-link.ts';

const TICK_MS = 1000;
/** Attestation refused with ResourceExhausted (rate limits) is retried this many times. */
const RATE_LIMITED_ATTEMPTS = 10;

export interface AgentLifecycleOptions {
  readonly link: ServerLink;
  readonly state: AgentStateDir;
  /** Null: the agent can only reuse a persisted SVID. */
  readonly attestor: AgentNodeAttestor | null;
  readonly clock: Clock;
  readonly log: Logger;
  /** The first attestation may skip server verification (no bundle at all). */
  readonly insecureBootstrap: boolean;
  readonly maxBackoffMs: number;
  /** The first-contact bundle, asked for only when the data dir holds none. */
  readonly bootstrapBundle: (signal: AbortSignal) => Promise<Uint8Array[]>;
  /** Runs each tick once the agent SVID is current (workload SVID rotation). */
  readonly onTick: () => Promise<void>;
}

export class AgentLifecycle {
  readonly #o: AgentLifecycleOptions;
  readonly #stopped = new AbortController();
  #fatal: AgentFatalError | null = null;
  /** A join token attests once: after one attempt in this process it is spent. */
  #attempted = false;
  #attesting: Promise<void> | null = null;
  /** When each agent SVID this process obtained arrived (a persisted one: unknown). */
  readonly #received = new WeakMap<AgentIdentity, number>();

  constructor(o: AgentLifecycleOptions) {
    this.#o = o;
  }

  /** Aborts when the agent cannot continue; `fatal` says why. */
  get stopped(): AbortSignal {
    return this.#stopped.signal;
  }

  get fatal(): AgentFatalError | null {
    return this.#fatal;
  }

  /**
   * Uses the persisted agent SVID while it is valid (the server may still refuse it: then
   * `refused` attests with the configured attestor); otherwise attests now.
   */
  async bootstrap(signal: AbortSignal): Promise<void> {
    const { state, link, log, clock } = this.#o;
    const saved = await state.loadIdentity();
    const persisted = await state.loadBundle();
    await link.resolveAddresses();
    link.restore(saved, persisted ?? (await this.#o.bootstrapBundle(signal)), persisted !== null);
    if (saved && saved.expiresAt > clock.now()) {
      log.info({ spiffeId: saved.spiffeId }, 'reusing the persisted agent SVID');
      return;
    }
    await this.#attestWithRetry(saved ? 'the agent SVID has expired' : 'no agent SVID yet', signal);
  }

  /**
   * The server refused a call made with `used` (the identity current when the call started).
   * A refusal of an identity already replaced is stale and ignored.
   */
  async refused(e: ConnectError, used: AgentIdentity | null): Promise<void> {
    if (used !== this.#o.link.identity) return;
    const reason = refusalReasonIn(e.metadata);
    if (reason === 'agent_banned' || !this.#canAttest()) {
      this.#fail(new AgentFatalError(refusedMessage(e, reason, this.#o.attestor)));
      return;
    }
    await this.#attestOnce(`refused: ${reason ?? e.rawMessage}`, this.#stopped.signal).catch(
      (err: unknown) => {
        if (!(err instanceof AgentFatalError)) {
          this.#o.log.warn({ err: (err as Error).message }, 're-attestation failed; will retry');
          return;
        }
        // Both halves matter to the operator: why the SVID went, why attesting did not help.
        const why = `the server refused this agent (${e.rawMessage}), and attesting again failed`;
        this.#fail(new AgentFatalError(`${why}: ${err.message}`, { cause: err }));
      },
    );
  }

  /** Once a second until `signal` aborts: renew at half-life, re-attest when expired, rotate. */
  async maintain(signal: AbortSignal): Promise<void> {
    const stop = AbortSignal.any([signal, this.#stopped.signal]);
    while (!stop.aborted) {
      await defaultSleep(TICK_MS, stop);
      if (stop.aborted) return;
      const used = this.#o.link.identity;
      try {
        await this.#tick(stop);
      } catch (e) {
        if (stop.aborted) return;
        const ce = ConnectError.from(e);
        if (ce.code === Code.PermissionDenied || ce.code === Code.Unauthenticated)
          await this.refused(ce, used);
        else this.#o.log.warn({ err: (e as Error).message }, 'maintenance failed; will retry');
      }
    }
  }

  async #tick(signal: AbortSignal): Promise<void> {
    const { link, clock, log } = this.#o;
    const id = link.identity;
    const now = clock.now();
    // While the server is away, ask once a tick: its first answer wakes the entry sync.
    if (id && id.expiresAt > now && link.down) await link.probe(signal);
    if (!id || id.expiresAt <= now) {
      if (this.#canAttest()) await this.#attestOnce('the agent SVID has expired', signal);
      else
        this.#fail(
          new AgentFatalError(
            'the agent SVID has expired and join tokens cannot re-attest: use a new token',
          ),
        );
      return;
    }
    if (now >= halfLifeAt(id.notBefore, id.expiresAt, this.#received.get(id))) {
      const renewed = await link.renew(signal);
      this.#received.set(renewed, clock.now());
      log.info({ expiresAt: new Date(renewed.expiresAt).toISOString() }, 'renewed the agent SVID');
    }
    await this.#o.onTick();
  }

  #canAttest(): boolean {
    const a = this.#o.attestor;
    return a !== null && (a.canReattest || !this.#attempted);
  }

  /** Concurrent refusals (sync stream, renewal) share one attestation. */
  #attestOnce(why: string, signal: AbortSignal): Promise<void> {
    this.#attesting ??= this.#attest(why, signal).finally(() => (this.#attesting = null));
    return this.#attesting;
  }

  /**
   * A server rate-limiting attestation (many nodes starting behind one address) is waited out
   * with backoff, a bounded number of times; every other failure ends the start.
   */
  async #attestWithRetry(why: string, signal: AbortSignal): Promise<void> {
    const backoff = new Backoff({ initialMs: 1000, maxMs: this.#o.maxBackoffMs });
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#attest(why, signal);
        return;
      } catch (e) {
        const limited = e instanceof ConnectError && e.code === Code.ResourceExhausted;
        if (!limited || attempt >= RATE_LIMITED_ATTEMPTS || signal.aborted) throw e;
        const ms = backoff.next();
        this.#o.log.warn(
          { retryInMs: ms, reason: e.rawMessage },
          'attestation rate-limited; retrying',
        );
        await defaultSleep(ms, signal);
      }
    }
  }

  async #attest(why: string, signal: AbortSignal): Promise<void> {
    const { attestor, link, log } = this.#o;
    if (!attestor) {
      throw new AgentFatalError(
        `cannot attest (${why}): configure a node attestor (${Object.keys(builtinNodeAttestors).join(', ')})`,
      );
    }
    log.info({ attestor: attestor.type, why }, 'attesting to the server');
    try {
      const insecure = this.#o.insecureBootstrap && link.bundle.length === 0;
      const id = await link.attest(attestor, insecure, signal);
      this.#received.set(id, this.#o.clock.now());
      this.#attempted = true;
      log.info({ spiffeId: id.spiffeId }, 'attested');
    } catch (e) {
      const ce = e instanceof ConnectError ? e : null;
      if (ce?.code === Code.PermissionDenied || ce?.code === Code.InvalidArgument) {
        this.#attempted = true;
        throw new AgentFatalError(`node attestation refused: ${ce.rawMessage}`, { cause: e });
      }
      throw e;
    }
  }

  #fail(e: AgentFatalError): void {
    if (this.#fatal) return;
    this.#o.log.error(e.message);
    this.#fatal = e;
    this.#stopped.abort();
  }
}

function refusedMessage(
  e: ConnectError,
  reason: RefusalReason | null,
  attestor: AgentNodeAttestor | null,
): string {
  const what = `the server refused this agent: ${e.rawMessage}`;
  if (reason === 'agent_banned') return what;
  // Evicted, unknown or superseded, and nothing left to attest with.
  return attestor
    ? `${what}; the join token was already used: start the agent with a new --join-token`
    : `${what}; start the agent with a new --join-token (or configure x509pop) to attest again`;
}
