// Keeps this server's signing authorities (X.509 CA and JWT key) rotating through
// prepared → active → old, publishing each new key in the trust bundle before it signs anything
// (prepare inserts into the bundle in the same transaction that records the slot).
//
// Across servers sharing a database, "published" means "in every server's bundle": the bundle
// change announces the `bundles` topic and the other servers refresh their bundle caches on it
// (PostgreSQL NOTIFY). Scheduled rotation activates a key long after it was prepared; the first
// authority of a server that has none (its first start) is activated only once it has been in
// the stored bundle for `publishDelayMs`, so a JWT-SVID or X.509-SVID it signs verifies against
// any server's bundle from the start.
//
// Crash safety and key deletion: every key this server generates goes through the key journal
// (authority-keys.ts); what each step does to the trust bundle is authority-bundle.ts.
import { randomBytes } from 'node:crypto';
import {
  type Authority,
  type AuthorityKind,
  type AuthorityStatus,
  rotationThresholds,
} from '../../core/authority.ts';
import type { Bundle } from '../../core/bundle.ts';
import type { Clock } from '../../core/clock.ts';
import { FailedPreconditionError } from '../../core/errors.ts';
import type { KeyManager, ManagedKey } from '../../crypto/key-manager.ts';
import type { StoreAggregates, Store } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../../core/caller.ts';
import type { AuthorityFactory } from './authority-factory.ts';
import { publishAuthority, removeAuthority, taintAuthority } from './authority-bundle.ts';
import { byId, byStatus, toActivate, toRevoke, toTaint } from './authority-commands.ts';
import { AuthorityKeys } from './authority-keys.ts';
import { MissingAuthorityKeyError } from './missing-key-error.ts';

export interface ActiveX509 {
  readonly authority: Authority;
  readonly key: ManagedKey;
  /** CA certificate first, then upstream intermediates (not the upstream root). */
  readonly chainDer: readonly Uint8Array[];
}

export interface ActiveJwt {
  readonly authority: Authority;
  readonly key: ManagedKey;
}

export interface AuthorityManagerOptions {
  /** Its own aggregates, and transactions over them (which also audit). */
  store: Pick<Store, 'transaction' | 'authorities' | 'keyJournal'>;
  keys: KeyManager;
  factory: AuthorityFactory;
  auditor: Auditor;
  clock: Clock;
  serverId: string;
  trustDomain: string;
  /** spiffe_refresh_hint (seconds) written with every bundle change. */
  refreshHintSeconds: number;
  /**
   * How long a server's first authority of a kind stays published (prepared) before it is
   * activated: time for the other servers to see it (default 0: a single server).
   */
  publishDelayMs?: number;
  /** Waits (default: a timer); injected so tests with a manual clock need not sleep. */
  sleep?: (ms: number) => Promise<void>;
  /** Called after any change (rotation metrics, TLS certificate refresh). */
  onChange?: (kind: AuthorityKind, event: string) => void;
}

const SYSTEM: RequestContext = { caller: { kind: 'local-admin' }, correlationId: 'rotation' };

export class AuthorityManager {
  readonly #o: AuthorityManagerOptions;
  #authorities: Authority[] = [];
  readonly #keys: AuthorityKeys;

  private constructor(o: AuthorityManagerOptions) {
    this.#o = o;
    this.#keys = new AuthorityKeys({
      keys: o.keys,
      journal: o.store.keyJournal,
      serverId: o.serverId,
      clock: o.clock,
    });
  }

  static async create(o: AuthorityManagerOptions): Promise<AuthorityManager> {
    const m = new AuthorityManager(o);
    await m.#reload();
    await m.#keys.sweep(m.#authorities);
    await m.rotate();
    return m;
  }

  /** Timer-driven: prepare, activate and prune as the rules say. Idempotent. */
  async rotate(): Promise<void> {
    // A kind with no active authority (the first start): prepare, let it be seen, activate.
    const fresh: Authority[] = [];
    for (const kind of ['x509', 'jwt'] as const) {
      if (this.#find(kind, 'active')) continue;
      fresh.push(this.#find(kind, 'prepared') ?? (await this.#prepare(kind, SYSTEM)));
    }
    await this.#untilPublished(fresh);
    for (const a of fresh) await this.#activate(a.kind, a.id, SYSTEM);
    for (const kind of ['x509', 'jwt'] as const) {
      if (fresh.some((a) => a.kind === kind)) continue;
      const now = this.#o.clock.now();
      const active = this.#find(kind, 'active');
      if (!active) continue;
      const t = rotationThresholds(active);
      let prepared = this.#find(kind, 'prepared');
      if (!prepared && now >= t.prepareAt) prepared = await this.#prepare(kind, SYSTEM);
      if (prepared && now >= t.activateAt) await this.#activate(kind, prepared.id, SYSTEM);
      await this.#prune(kind, now);
    }
  }

  /** Waits until each authority has been in the stored bundle for publishDelayMs. */
  async #untilPublished(authorities: readonly Authority[]): Promise<void> {
    const delay = this.#o.publishDelayMs ?? 0;
    if (authorities.length === 0 || delay <= 0) return;
    const until = Math.max(...authorities.map((a) => a.createdAt + delay));
    const wait = until - this.#o.clock.now();
    if (wait <= 0) return;
    const sleep = this.#o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    await sleep(wait);
  }

  list(kind?: AuthorityKind): Authority[] {
    return this.#authorities.filter((a) => !kind || a.kind === kind);
  }

  activeX509(): ActiveX509 {
    const authority = this.#mustActive('x509');
    return {
      authority,
      key: this.#keyOf(authority),
      chainDer: this.#o.factory.signingChain(authority),
    };
  }

  activeJwt(): ActiveJwt {
    const authority = this.#mustActive('jwt');
    return { authority, key: this.#keyOf(authority) };
  }

  /** Active and prepared authorities whose private key the key manager does not have. */
  missingKeys(): MissingAuthorityKeyError[] {
    return this.#authorities
      .filter(
        (a) => (a.status === 'active' || a.status === 'prepared') && !this.#keys.get(a.keyRef),
      )
      .map((a) => new MissingAuthorityKeyError(a, this.#keys.locate(a.keyRef)));
  }

  // --- forced rotation (admin) ---

  async prepare(kind: AuthorityKind, ctx: RequestContext): Promise<Authority> {
    const existing = this.#find(kind, 'prepared');
    // Replaced by a new prepare: it never signed, so it leaves everything (unaudited).
    if (existing) await this.#remove(existing);
    return this.#prepare(kind, ctx);
  }

  async activate(kind: AuthorityKind, id: string, ctx: RequestContext): Promise<Authority> {
    const prepared = toActivate(this.#authorities, kind, id);
    return this.#activate(kind, prepared.id, ctx);
  }

  async taint(kind: AuthorityKind, id: string, ctx: RequestContext): Promise<Authority> {
    const a = toTaint(this.#authorities, kind, id);
    await this.#o.store.transaction(async (tx) => {
      await tx.authorities.setTainted(kind, a.id);
      await this.#mutateBundle(tx, (b) => taintAuthority(b, a, this.#o.factory));
      await this.#o.auditor.record(tx, ctx, {
        action: `authority.${kind}.taint`,
        target: a.id,
        outcome: 'success',
      });
    });
    await this.#reload();
    this.#o.onChange?.(kind, 'taint');
    return this.#get(kind, a.id) as Authority;
  }

  async revoke(kind: AuthorityKind, id: string, ctx: RequestContext): Promise<Authority> {
    const a = toRevoke(this.#authorities, kind, id);
    await this.#remove(a, { ctx, action: 'revoke' });
    this.#o.onChange?.(kind, 'revoke');
    return a;
  }

  // --- internals ---

  async #prepare(kind: AuthorityKind, ctx: RequestContext): Promise<Authority> {
    const id = randomBytes(16).toString('hex');
    const keyRef = `${kind}-${id}`;
    const now = this.#o.clock.now();
    await this.#keys.begin(keyRef, now);
    const made = await this.#o.factory.make(kind, keyRef, now);
    const authority: Authority = {
      ...made,
      id,
      serverId: this.#o.serverId,
      kind,
      status: 'prepared',
      keyRef,
      tainted: false,
      createdAt: now,
    };
    await this.#o.store.transaction(async (tx) => {
      await tx.authorities.insert(authority);
      await this.#keys.commit(tx, keyRef, now);
      await this.#mutateBundle(tx, (b) => publishAuthority(b, authority, this.#o.factory));
      await this.#o.auditor.record(tx, ctx, {
        action: `authority.${kind}.prepare`,
        target: id,
        outcome: 'success',
        details: { keyType: authority.keyType, notAfter: authority.notAfter },
      });
    });
    this.#keys.hold(keyRef, made.key);
    await this.#reload();
    this.#o.onChange?.(kind, 'prepare');
    return authority;
  }

  async #activate(kind: AuthorityKind, id: string, ctx: RequestContext): Promise<Authority> {
    const current = this.#find(kind, 'active');
    await this.#o.store.transaction(async (tx) => {
      if (current) await tx.authorities.setStatus(kind, current.id, 'old');
      await tx.authorities.setStatus(kind, id, 'active');
      await this.#o.auditor.record(tx, ctx, {
        action: `authority.${kind}.activate`,
        target: id,
        outcome: 'success',
        details: current ? { previous: current.id } : {},
      });
    });
    await this.#reload();
    this.#o.onChange?.(kind, 'activate');
    return this.#get(kind, id) as Authority;
  }

  /** Old authorities past their expiry leave the bundle and the key manager. */
  async #prune(kind: AuthorityKind, now: number): Promise<void> {
    for (const a of this.list(kind)) {
      if (a.status !== 'old' || a.notAfter > now) continue;
      await this.#remove(a, { ctx: SYSTEM, action: 'prune' });
      this.#o.onChange?.(kind, 'prune');
    }
  }

  /**
   * The authority leaves the store and the bundle in one transaction (audited as `audit.action`;
   * a discarded prepare is not), then its key leaves the key manager.
   */
  async #remove(a: Authority, audit?: { ctx: RequestContext; action: string }): Promise<void> {
    await this.#o.store.transaction(async (tx) => {
      await tx.authorities.delete(a.kind, a.id);
      await this.#keys.retire(tx, a.keyRef);
      await this.#mutateBundle(tx, (b) =>
        removeAuthority(b, a, this.list('x509'), this.#o.factory),
      );
      if (audit)
        await this.#o.auditor.record(tx, audit.ctx, {
          action: `authority.${a.kind}.${audit.action}`,
          target: a.id,
          outcome: 'success',
        });
    });
    await this.#keys.delete(a.keyRef);
    await this.#reload();
  }

  async #mutateBundle(tx: StoreAggregates, fn: (b: Bundle) => Bundle): Promise<void> {
    await tx.bundles.mutate(this.#o.trustDomain, (b) => ({
      ...fn(b),
      refreshHint: this.#o.refreshHintSeconds,
    }));
  }

  async #reload(): Promise<void> {
    this.#authorities = await this.#o.store.authorities.list({ serverId: this.#o.serverId });
    await this.#keys.load(this.#authorities);
  }

  #find(kind: AuthorityKind, status: AuthorityStatus): Authority | undefined {
    return byStatus(this.#authorities, kind, status);
  }

  #get(kind: AuthorityKind, id: string): Authority | undefined {
    return byId(this.#authorities, kind, id);
  }

  #mustActive(kind: AuthorityKind): Authority {
    const a = this.#find(kind, 'active');
    if (!a) throw new FailedPreconditionError(`no active ${kind} authority`);
    return a;
  }

  #keyOf(a: Authority): ManagedKey {
    const key = this.#keys.get(a.keyRef);
    if (!key) throw new MissingAuthorityKeyError(a, this.#keys.locate(a.keyRef));
    return key;
  }
}
