// Revocation (core/access.ts AccessRevocation): ends the leases a scope covers (dynamic
// PostgreSQL roles dropped, through the lease manager) and bumps the access revision, which
// every server's sync streams push to their agents within a second: agents then drop every
// credential they cached and ask again, and the server decides again.
//
// The revision is bumped even when no lease ended (a static secret cached by an agent is not a
// lease) and even when ending leases failed — purging caches never waits for an upstream.
import type { AccessRevocation, LeaseScope } from '../../core/access.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import type { AccessRevisionStore } from '../../store/types.ts';

/** The lease manager's part revocation needs (server/broker/lease-manager.ts). */
export interface LeaseEnder {
  /** Ends every lease matching all fields of `scope`; returns how many. */
  endWhere(scope: LeaseScope, reason: string): Promise<number>;
}

const SCOPE_KEYS = ['policy', 'provider', 'server', 'client', 'agent'] as const;
const MAX_REASON = 256;

export class Revocation implements AccessRevocation {
  readonly #leases: LeaseEnder;
  readonly #revision: Pick<AccessRevisionStore, 'bump'>;
  readonly #onRevoked: (scope: LeaseScope, reason: string, ended: number) => void;

  constructor(o: {
    leases: LeaseEnder;
    revision: Pick<AccessRevisionStore, 'bump'>;
    /** Told after each revocation (logs, metrics). */
    onRevoked?: (scope: LeaseScope, reason: string, ended: number) => void;
  }) {
    this.#leases = o.leases;
    this.#revision = o.revision;
    this.#onRevoked = o.onRevoked ?? (() => {});
  }

  async revoke(scope: LeaseScope, reason: string): Promise<number> {
    checkScope(scope);
    const why = reason.slice(0, MAX_REASON);
    let ended = 0;
    try {
      ended = await this.#leases.endWhere(scope, why);
    } finally {
      await this.#revision.bump();
    }
    this.#onRevoked(scope, why, ended);
    return ended;
  }

  /** Agents drop cached credentials; no lease is ended (nothing was taken away from a client). */
  async purgeCaches(): Promise<void> {
    await this.#revision.bump();
  }
}

/** An empty scope would match every lease: refused, as a programming error would be. */
function checkScope(scope: LeaseScope): void {
  const set = SCOPE_KEYS.filter((k) => scope[k] !== undefined);
  if (set.length === 0)
    throw new InvalidArgumentError(
      'revocation scope: at least one of policy, provider, server, client, agent',
    );
  for (const k of set) {
    if (scope[k] === '') throw new InvalidArgumentError(`revocation scope: ${k} is empty`);
  }
}
