// Uses of credentials an agent served from its cache (release.proto ReportCachedUses): each is
// audited as the chain a release leaves — access.request → access.authorization →
// access.credential, one correlation id, every record marked `cached: true` and naming the release
// it came from — so that every connection the proxy made is accounted for, also those that did
// not reach the server. What the agent lost (its queue overflowed, the server was away) is
// audited as one `access.cached_uses_dropped` record with the count.
//
// The agent is authenticated; the workloads it speaks for are checked as the release checks
// them (client-entry.ts): a use for an entry the agent does not serve is refused.
import type { AccessRequestAuditDetails, CachedCredentialUse } from '../../core/access.ts';
import type { RequestContext } from '../../core/caller.ts';
import type { Clock } from '../../core/clock.ts';
import { InvalidArgumentError, PermissionDeniedError } from '../../core/errors.ts';
import { formatSelector } from '../../core/selector.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { AuthorizedEntries, ReleaseAgent } from './broker.ts';
import { clientEntry } from './client-entry.ts';
import { type CheckedRelease, type ReleaseInput, checkReleaseInput } from './release-input.ts';

/** The most uses one report carries (release.proto). */
export const MAX_CACHED_USES_PER_REPORT = 500;
const NAME = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/;
const CORRELATION_ID = /^[A-Za-z0-9._:-]{8,64}$/;
const WAYS_IN = new Set(['', 'listener', 'explicit', 'transparent', 'credential-api']);

/** The fields the release checks, as the release request carries them. */
const asReleaseInput = (u: CachedCredentialUse): ReleaseInput => ({
  entryId: u.entryId,
  selectors: u.selectors,
  attributes: u.attributes,
  server: u.server,
  httpMethod: u.request?.method ?? '',
  httpPath: u.request?.path ?? '',
  httpHost: u.request?.host ?? '',
  correlationId: u.correlationId,
});

interface CheckedUse {
  readonly use: CachedCredentialUse;
  readonly req: CheckedRelease;
  readonly spiffeId: string;
}

export interface CachedUseAuditOptions {
  readonly entries: AuthorizedEntries;
  readonly auditor: Pick<Auditor, 'log'>;
  readonly clock: Clock;
}

export class CachedUseAudit {
  readonly #o: CachedUseAuditOptions;

  constructor(o: CachedUseAuditOptions) {
    this.#o = o;
  }

  /**
   * Audits every use (all checked first: a bad one refuses the report, nothing recorded), then
   * the dropped count when there is one.
   */
  async report(
    ctx: RequestContext,
    agent: ReleaseAgent,
    uses: readonly CachedCredentialUse[],
    dropped: number,
  ): Promise<void> {
    if (uses.length > MAX_CACHED_USES_PER_REPORT)
      throw new InvalidArgumentError(`uses: at most ${MAX_CACHED_USES_PER_REPORT} a report`);
    const now = this.#o.clock.now();
    const checked = uses.map((u, i) => this.#check(agent, u, i, now));
    for (const c of checked) await this.#audit(agent, c);
    if (dropped > 0) {
      await this.#o.auditor.log(ctx, {
        action: 'access.cached_uses_dropped',
        target: agent.spiffeId,
        outcome: 'error',
        details: { agent: agent.spiffeId, dropped, cached: true },
      });
    }
  }

  #check(agent: ReleaseAgent, u: CachedCredentialUse, i: number, now: number): CheckedUse {
    const at = (why: string) => new InvalidArgumentError(`uses[${i}]: ${why}`);
    const req = (() => {
      try {
        return checkReleaseInput(asReleaseInput(u));
      } catch (e) {
        throw at((e as Error).message);
      }
    })();
    if (!CORRELATION_ID.test(u.correlationId)) throw at('correlation_id: 8..64 of [A-Za-z0-9._:-]');
    if (!CORRELATION_ID.test(u.releasedCorrelationId))
      throw at('released_correlation_id: 8..64 of [A-Za-z0-9._:-]');
    if (!NAME.test(u.policy)) throw at('policy: not a policy name');
    if (!NAME.test(u.credentialProvider)) throw at('credential_provider: not a provider name');
    if (u.leaseId.length > 128) throw at('lease_id: longer than 128 characters');
    if (!WAYS_IN.has(u.wayIn)) throw at(`way_in: not one of ${[...WAYS_IN].join(', ')}`);
    if (!Number.isSafeInteger(u.at) || u.at <= 0) throw at('at: not a time');
    const found = clientEntry(this.#o.entries, agent, req.entryId, req.selectors, now);
    if ('refusal' in found) throw new PermissionDeniedError(`uses[${i}]: ${found.refusal}`);
    return { use: u, req, spiffeId: found.entry.spiffeId };
  }

  async #audit(agent: ReleaseAgent, c: CheckedUse): Promise<void> {
    const { use, req, spiffeId } = c;
    const ctx: RequestContext = {
      caller: { kind: 'workload', spiffeId },
      correlationId: use.correlationId,
    };
    const common = {
      cached: true,
      released_correlation_id: use.releasedCorrelationId,
      served_at: use.at,
      ...(use.wayIn !== '' ? { way_in: use.wayIn } : {}),
    };
    const request: AccessRequestAuditDetails = {
      client: spiffeId,
      selectors: req.selectors.map(formatSelector),
      attributes: req.attributes,
      server: req.server,
      ...(req.request ? { request: req.request } : {}),
      agent: agent.spiffeId,
    };
    const log = (action: string, details: Record<string, unknown>) =>
      this.#o.auditor.log(ctx, { action, target: req.server, outcome: 'success', details });
    await log('access.request', { ...request, entry_id: req.entryId, ...common });
    await log('access.authorization', {
      decision: 'allow',
      reason: 'allowed',
      policy: use.policy,
      failed_condition: '',
      ...common,
    });
    await log('access.credential', {
      provider: use.credentialProvider,
      lease_id: use.leaseId,
      expires_at: use.expiresAt,
      policy: use.policy,
      ...common,
    });
  }
}
