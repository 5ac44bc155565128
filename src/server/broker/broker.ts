// The credential broker: an agent asks, on behalf of a workload it attested, for a credential to
// a server workload (CredentialReleaseService.ReleaseCredential). The server is the authority:
// it re-checks that the workload's entry is one this agent serves and that the attested
// selectors carry the entry's, decides over the access policies now, and only then has the
// policy's credential provider release a credential.
//
// Every access leaves three records with one correlation id — access.request (the decision's
// inputs) → access.authorization (decision, policy, failing condition) → access.credential
// (provider, lease, expiry; never the value) — and audit fails closed: nothing is released
// unless each record before it is committed.
import type {
  AccessClient,
  AccessDecider,
  AccessDecision,
  AccessRequestAuditDetails,
  Credential,
  CredentialProviderRecord,
  ServerWorkload,
} from '../../core/access.ts';
import type { Clock } from '../../core/clock.ts';
import type { Entry } from '../../core/entry.ts';
import { SERVER_PROTOCOLS } from '../../core/access.ts';
import {
  FailedPreconditionError,
  InvalidArgumentError,
  PermissionDeniedError,
  UnavailableError,
  isTesseraError,
} from '../../core/errors.ts';
import { type Selector, formatSelector } from '../../core/selector.ts';
import type {
  CredentialProvider,
  CredentialProviderDeps,
} from '../../plugins/credential-providers/credential-provider.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../../core/caller.ts';
import { clientEntry } from './client-entry.ts';
import { type BuildProvider, ProviderCache } from './provider-cache.ts';
import { evaluateEntryCondition } from '../posture/entry-condition.ts';
import { type CheckedRelease, type ReleaseInput, checkReleaseInput } from './release-input.ts';

/** The calling agent, as authenticated (its node record). */
export interface ReleaseAgent {
  readonly spiffeId: string;
  readonly selectors: readonly Selector[];
}

/** The entry index's answer to "may this agent serve this entry?" (as SVID signing asks it). */
export interface AuthorizedEntries {
  authorizedEntry(
    agentId: string,
    nodeSelectors: ReadonlySet<string>,
    entryId: string,
    now: number,
  ): Entry | undefined;
}

/** Reads of the access model the broker needs (the AccessStore, or a cache of it). */
export interface AccessRecords {
  serverWorkload(name: string): Promise<ServerWorkload | null>;
  credentialProvider(name: string): Promise<CredentialProviderRecord | null>;
  /** Every server workload (granted() lists those of one protocol); absent: none. */
  listServerWorkloads?(): Promise<ServerWorkload[]>;
}

/** Most names granted() returns. */
export const MAX_GRANTED_SERVERS = 100;

export interface ReleasedCredential {
  readonly kind: 'credential';
  readonly credential: Credential;
  readonly client: string;
  readonly server: string;
  readonly present: string;
  readonly policy: string;
  readonly provider: string;
  readonly correlationId: string;
  /** The decision may differ for another HTTP request (AccessDecision.requestDependent). */
  readonly requestDependent?: true;
}

export interface ReleaseDenial {
  readonly kind: 'denial';
  readonly reason: AccessDecision['reason'];
  readonly policy: string;
  readonly failedCondition: string;
  readonly correlationId: string;
}

export type ReleaseOutcome = ReleasedCredential | ReleaseDenial;

export interface CredentialBrokerOptions {
  readonly entries: AuthorizedEntries;
  readonly decider: AccessDecider;
  readonly records: AccessRecords;
  readonly auditor: Pick<Auditor, 'log'>;
  readonly clock: Clock;
  /** Builds a provider from its record: the catalog's createCredentialProvider in production. */
  readonly buildProvider: BuildProvider;
  readonly providerDeps: CredentialProviderDeps;
  /** Internal provider failures (never returned to the caller) and close errors. */
  readonly log?: (msg: string, fields: Record<string, unknown>) => void;
  /** The workload's typed facts (server/posture/workload-facts.ts); absent: none. */
  readonly facts?: (
    agent: ReleaseAgent,
    attributes: Readonly<Record<string, string>>,
  ) => Readonly<Record<string, unknown>>;
}

/** Audit records of an access are the client's: its SPIFFE ID is the actor. */
function asActor(spiffeId: string, correlationId: string): RequestContext {
  return { caller: { kind: 'workload', spiffeId }, correlationId };
}

export class CredentialBroker {
  readonly #o: CredentialBrokerOptions;
  readonly #providers: ProviderCache;

  constructor(o: CredentialBrokerOptions) {
    this.#o = o;
    this.#providers = new ProviderCache(o.buildProvider, o.providerDeps, (name, e) =>
      o.log?.('credential provider close failed', { provider: name, err: errText(e) }),
    );
  }

  /** Releases a credential, or returns the denial; throws on refusal or provider failure. */
  async release(agent: ReleaseAgent, input: ReleaseInput): Promise<ReleaseOutcome> {
    const req = checkReleaseInput(input);
    const now = this.#o.clock.now();
    const entry = await this.#entryOf(agent, req, now);
    const facts = this.#o.facts?.(agent, req.attributes);
    const client: AccessClient = {
      spiffeId: entry.spiffeId,
      selectors: req.selectors,
      attributes: req.attributes,
      ...(facts ? { facts } : {}),
    };
    // A workload that does not meet its entry's condition has no identity: no credential either.
    if (facts && (entry.condition ?? '') !== '') {
      const v = evaluateEntryCondition(entry, facts);
      if (!v.allowed) throw new FailedPreconditionError(`entry ${entry.id}: ${v.reason}`);
    }
    const ctx = asActor(client.spiffeId, req.correlationId);
    await this.#auditRequest(ctx, agent, client, req);
    // Read-your-writes: every access change announced before this call (a deleted policy) is in
    // the decision; a decider that cannot catch up fails the release rather than decide stale.
    await this.#o.decider.sync?.();
    const decision = this.#o.decider.decide({
      client,
      server: req.server,
      ...(req.request ? { request: req.request } : {}),
      at: now,
    });
    await this.#o.auditor.log(ctx, {
      action: 'access.authorization',
      target: req.server,
      outcome: decision.allowed ? 'success' : 'denied',
      details: {
        decision: decision.allowed ? 'allow' : 'deny',
        reason: decision.reason,
        policy: decision.policy,
        failed_condition: decision.failedCondition,
      },
    });
    if (!decision.allowed) {
      return {
        kind: 'denial',
        reason: decision.reason,
        policy: decision.policy,
        failedCondition: decision.failedCondition,
        correlationId: req.correlationId,
      };
    }
    return this.#releaseAllowed(ctx, agent, client, req, decision);
  }

  /**
   * The server workloads of `protocol` the client is granted now: the decision release() would
   * make for each, without releasing (ListGrantedServerWorkloads; the cloud metadata endpoints
   * list them as roles). The entry is checked as release() checks it. Not audited: nothing is
   * released, and the release that follows is.
   */
  async granted(
    agent: ReleaseAgent,
    input: Omit<ReleaseInput, 'server' | 'httpMethod' | 'httpPath' | 'httpHost'>,
    protocol: string,
  ): Promise<string[]> {
    if (!(SERVER_PROTOCOLS as readonly string[]).includes(protocol)) {
      throw new InvalidArgumentError(`protocol: "${protocol.slice(0, 32)}" is not a protocol`);
    }
    // The name is only there to pass the input check; the decisions below name each server.
    const req = checkReleaseInput({
      ...input,
      server: 'granted-listing',
      httpMethod: '',
      httpPath: '',
      httpHost: '',
    });
    const now = this.#o.clock.now();
    const entry = await this.#entryOf(agent, req, now);
    const client: AccessClient = {
      spiffeId: entry.spiffeId,
      selectors: req.selectors,
      attributes: req.attributes,
    };
    await this.#o.decider.sync?.();
    const servers = (await this.#o.records.listServerWorkloads?.()) ?? [];
    return servers
      .filter((s) => s.protocol === protocol)
      .map((s) => s.name)
      .sort()
      .filter((server) => this.#o.decider.decide({ client, server, at: now }).allowed)
      .slice(0, MAX_GRANTED_SERVERS);
  }

  /**
   * The instance for a stored provider record (built on first use, kept until the record
   * changes): the lease manager ends leases through the same instance that released them.
   */
  providerFor(record: CredentialProviderRecord): CredentialProvider {
    return this.#providers.get(record);
  }

  /** Closes the instance of a deleted provider now rather than at its next use or shutdown. */
  forgetProvider(name: string): void {
    this.#providers.drop(name);
  }

  /** Closes every provider instance (connection pools, timers). */
  close(): Promise<void> {
    return this.#providers.closeAll();
  }

  /**
   * The entry the workload was attested as: one this agent is authorized for (the rule SVID
   * signing uses), whose selectors are all among the attested ones. Anything else is refused
   * and audited under the agent's name — the agent asked for more than it may.
   */
  async #entryOf(agent: ReleaseAgent, req: CheckedRelease, now: number): Promise<Entry> {
    const found = clientEntry(this.#o.entries, agent, req.entryId, req.selectors, now);
    if ('refusal' in found) {
      await this.#o.auditor.log(asActor(agent.spiffeId, req.correlationId), {
        action: 'access.request',
        target: req.server,
        outcome: 'denied',
        details: { agent: agent.spiffeId, entry_id: req.entryId, reason: found.refusal },
      });
      throw new PermissionDeniedError(found.refusal);
    }
    return found.entry;
  }

  async #auditRequest(
    ctx: RequestContext,
    agent: ReleaseAgent,
    client: AccessClient,
    req: CheckedRelease,
  ): Promise<void> {
    const details: AccessRequestAuditDetails = {
      client: client.spiffeId,
      selectors: client.selectors.map(formatSelector),
      attributes: client.attributes,
      server: req.server,
      ...(req.request ? { request: req.request } : {}),
      agent: agent.spiffeId,
    };
    await this.#o.auditor.log(ctx, {
      action: 'access.request',
      target: req.server,
      outcome: 'success',
      details: { ...details, entry_id: req.entryId },
    });
  }

  async #releaseAllowed(
    ctx: RequestContext,
    agent: ReleaseAgent,
    client: AccessClient,
    req: CheckedRelease,
    decision: AccessDecision,
  ): Promise<ReleasedCredential> {
    const name = decision.credentialProvider;
    let credential: Credential;
    let server: ServerWorkload;
    try {
      const found = await this.#recordsFor(req.server, name);
      server = found.server;
      credential = await this.#providers.get(found.provider).release({
        client,
        server,
        policy: decision.policy,
        agent: agent.spiffeId,
        correlationId: req.correlationId,
      });
    } catch (e) {
      const err = this.#providerError(name, e, req.correlationId);
      await this.#o.auditor.log(ctx, {
        action: 'access.credential',
        target: req.server,
        outcome: 'error',
        details: { provider: name, code: err.code, reason: err.message },
      });
      throw err;
    }
    // Fail closed: the credential leaves only once this record is committed.
    await this.#o.auditor.log(ctx, {
      action: 'access.credential',
      target: req.server,
      outcome: 'success',
      details: {
        provider: name,
        lease_id: credential.leaseId,
        expires_at: credential.expiresAt,
        policy: decision.policy,
      },
    });
    return {
      kind: 'credential',
      credential,
      client: client.spiffeId,
      server: server.name,
      present: server.present,
      policy: decision.policy,
      provider: name,
      correlationId: req.correlationId,
      ...(decision.requestDependent ? { requestDependent: true as const } : {}),
    };
  }

  async #recordsFor(
    serverName: string,
    providerName: string,
  ): Promise<{ server: ServerWorkload; provider: CredentialProviderRecord }> {
    const [server, provider] = await Promise.all([
      this.#o.records.serverWorkload(serverName),
      this.#o.records.credentialProvider(providerName),
    ]);
    // The decision was made over an index; a delete may have landed since.
    if (!server)
      throw new FailedPreconditionError(`server workload "${serverName}" no longer exists`);
    if (!provider) {
      this.#providers.drop(providerName);
      throw new FailedPreconditionError(`credential provider "${providerName}" does not exist`);
    }
    return { server, provider };
  }

  /**
   * What the caller sees of a provider failure: the provider's own failed_precondition or
   * unavailable message (which names the upstream and never a secret), prefixed with the
   * provider; anything else only as "failed", its detail logged under the correlation id.
   */
  #providerError(name: string, e: unknown, correlationId: string) {
    // Messages of Tessera errors are written not to carry secrets (errors.ts); other errors'
    // messages may quote anything, so they are only logged by class.
    // A misconfiguration: a missing secret, a secret of the wrong shape, a config it refuses.
    if (isTesseraError(e) && MISCONFIGURED.has(e.code)) {
      return e.message.includes(`"${name}"`)
        ? new FailedPreconditionError(e.message, { cause: e })
        : new FailedPreconditionError(`credential provider "${name}": ${e.message}`, { cause: e });
    }
    if (isTesseraError(e) && (e.code === 'unavailable' || e.code === 'resource_exhausted')) {
      return new UnavailableError(`credential provider "${name}": ${e.message}`, { cause: e });
    }
    this.#o.log?.('credential provider failed', {
      provider: name,
      correlationId,
      err: errText(e),
    });
    return new UnavailableError(
      `credential provider "${name}" failed (correlation id ${correlationId})`,
      { cause: e },
    );
  }
}

const MISCONFIGURED = new Set(['failed_precondition', 'not_found', 'invalid_argument']);

/** The error's class and code only: a provider's raw message might quote what it was sent. */
function errText(e: unknown): string {
  if (isTesseraError(e)) return `${e.name} (${e.code})`;
  return e instanceof Error ? e.name : typeof e;
}
