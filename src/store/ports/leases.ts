// Store port of leases (docs/access.md, "Leases"): released credentials that exist until ended.
import type { Lease, LeaseScope } from '../../core/access.ts';

/**
 * Where a lease stands. `creating`: recorded before its credential exists (a crash here leaves a
 * lease whose role may or may not exist); `active`: the credential was handed out; `ending`:
 * claimed by one server to end (its provider's endLease runs); `ended`: gone, kept for history
 * until pruned.
 */
export type LeaseState = 'creating' | 'active' | 'ending' | 'ended';

export interface LeaseRecord extends Lease {
  readonly state: LeaseState;
  /** When it entered `ending` (the claim); 0 before. */
  readonly claimedAt: number;
  /** Why it is ending or ended; "" before. */
  readonly endReason: string;
  /** When it was ended; null before. */
  readonly endedAt: number | null;
}

/**
 * Leases of dynamic credentials (docs/access.md, "Leases"). Claiming a lease to end it is one
 * conditional UPDATE, so of several servers sharing the database exactly one ends it.
 */
export interface LeaseStore {
  /** Inserts in state `creating`; AlreadyExistsError when the id exists. */
  create(lease: Lease): Promise<void>;
  /** `creating` → `active`; false when the lease is not `creating` (claimed to end meanwhile). */
  activate(id: string): Promise<boolean>;
  get(id: string): Promise<LeaseRecord | null>;
  /**
   * Leases in `creating` or `active` matching every field of `scope` (at least one set:
   * InvalidArgumentError otherwise), oldest first, at most `limit` (1..1000).
   */
  listMatching(scope: LeaseScope, limit: number): Promise<LeaseRecord[]>;
  /**
   * Leases due to be ended, oldest expiry first, at most `limit` (1..1000): `creating` or
   * `active` with expiresAt <= now; `creating` created at or before `creatingBefore` (abandoned
   * mid-creation); `ending` claimed at or before `claimedBefore` (its ender died or failed).
   */
  listDue(
    due: { now: number; creatingBefore: number; claimedBefore: number },
    limit: number,
  ): Promise<LeaseRecord[]>;
  /**
   * Atomically moves the lease to `ending` (claimedAt = now, endReason = reason) when it is
   * `creating`/`active`, or `ending` with claimedAt <= claimedBefore; returns it, or null when
   * it is missing, ended, or claimed by someone else recently.
   */
  claim(
    id: string,
    now: number,
    reason: string,
    claimedBefore: number,
  ): Promise<LeaseRecord | null>;
  /** `ending` → `ended` (endedAt = now); false when not `ending`. */
  markEnded(id: string, now: number): Promise<boolean>;
  /** Deletes `ended` leases ended at or before `before`. Returns the count. */
  pruneEnded(before: number): Promise<number>;
}
