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
// (store KeyJournalStore). `pending` is committed before the key is generated; one transaction
// then records the authority, marks the key `committed`, updates the bundle and appends the audit
// record. Removing an authority marks its key `retired` in the same transaction, and the file is
// deleted after. Start-up finishes what a crash interrupted: it deletes the keys of its own
// journal that are `retired`, or `pending` with no authority record. A key file the journal does
// not mention is never deleted: "this datastore does not know it" may mean it belongs to another
// server or another datastore (a second server started on this directory once deleted the
// first one's keys that way).
import { randomBytes } from 'node:crypto';
import {
  type Authority,
  type AuthorityKind,
  type AuthorityStatus,
  rotationThresholds,
} from '../../core/authority.ts';
import { type Bundle, withJwtAuthority, withX509Authority } from '../../core/bundle.ts';
import type { Clock } from '../../core/clock.ts';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../../core/errors.ts';
import type { KeyManager, ManagedKey } from '../../crypto/key-manager.ts';
import type { StoreAggregates, Store } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../../core/caller.ts';
import type { AuthorityFactory } from './authority-factory.ts';

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
  readonly #keys = new Map<string, ManagedKey>();

  private constructor(o: AuthorityManagerOptions) {
    this.#o = o;
  }

  static async create(o: AuthorityManagerOptions): Promise<AuthorityManager> {
    const m = new AuthorityManager(o);
    await m.#reload();
    await m.#sweepJournal();
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
        (a) => (a.status === 'active' || a.status === 'prepared') && !this.#keys.has(a.keyRef),
      )
      .map((a) => new MissingAuthorityKeyError(a, this.#o.keys.locate(a.keyRef)));
  }

  // --- forced rotation (admin) ---

  async prepare(kind: AuthorityKind, ctx: RequestContext): Promise<Authority> {
    const existing = this.#find(kind, 'prepared');
    if (existing) await this.#discard(existing);
    return this.#prepare(kind, ctx);
  }

  async activate(kind: AuthorityKind, id: string, ctx: RequestContext): Promise<Authority> {
    const prepared = id ? this.#get(kind, id) : this.#find(kind, 'prepared');
    if (!prepared || prepared.status !== 'prepared') {
      throw new FailedPreconditionError(
        `no prepared ${kind} authority${id ? ` with id ${id}` : ''}: run prepare first`,
      );
    }
    return this.#activate(kind, prepared.id, ctx);
  }

  async taint(kind: AuthorityKind, id: string, ctx: RequestContext): Promise<Authority> {
    const a = id ? this.#get(kind, id) : this.#find(kind, 'old');
    if (!a)
      throw new NotFoundError(`no old ${kind} authority${id ? ` with id ${id}` : ''} to taint`);
    if (a.status !== 'old') {
      throw new FailedPreconditionError(
        `only an old ${kind} authority can be tainted; ${a.id} is ${a.status}: activate a new one first`,
      );
    }
    if (a.tainted)
      throw new FailedPreconditionError(`${kind} authority ${a.id} is already tainted`);
    await this.#o.store.transaction(async (tx) => {
      await tx.authorities.setTainted(kind, a.id);
      await this.#mutateBundle(tx, (b) => this.#taintInBundle(b, a));
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
    const a = id ? this.#get(kind, id) : this.list(kind).find((x) => x.tainted);
    if (!a)
      throw new NotFoundError(
        `no tainted ${kind} authority${id ? ` with id ${id}` : ''} to revoke`,
      );
    if (!a.tainted)
      throw new FailedPreconditionError(
        `${kind} authority ${a.id} must be tainted before it is revoked`,
      );
    await this.#o.store.transaction(async (tx) => {
      await tx.authorities.delete(kind, a.id);
      await this.#retireKey(tx, a);
      await this.#mutateBundle(tx, (b) => this.#removeFromBundle(b, a));
      await this.#o.auditor.record(tx, ctx, {
        action: `authority.${kind}.revoke`,
        target: a.id,
        outcome: 'success',
      });
    });
    await this.#deleteKey(a.keyRef);
    await this.#reload();
    this.#o.onChange?.(kind, 'revoke');
    return a;
  }

  // --- internals ---

  async #prepare(kind: AuthorityKind, ctx: RequestContext): Promise<Authority> {
    const id = randomBytes(16).toString('hex');
    const keyRef = `${kind}-${id}`;
    const now = this.#o.clock.now();
    // Committed before the key exists: a crash from here to the transaction leaves a `pending`
    // record that start-up resolves. A failed transaction leaves it too (it may have committed
    // after all, unseen), so the key is never deleted here on a guess.
    await this.#o.store.keyJournal.set(this.#o.serverId, keyRef, 'pending', now);
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
      await tx.keyJournal.set(this.#o.serverId, keyRef, 'committed', now);
      await this.#mutateBundle(tx, (b) => this.#publish(b, authority));
      await this.#o.auditor.record(tx, ctx, {
        action: `authority.${kind}.prepare`,
        target: id,
        outcome: 'success',
        details: { keyType: authority.keyType, notAfter: authority.notAfter },
      });
    });
    this.#keys.set(keyRef, made.key);
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
      await this.#o.store.transaction(async (tx) => {
        await tx.authorities.delete(kind, a.id);
        await this.#retireKey(tx, a);
        await this.#mutateBundle(tx, (b) => this.#removeFromBundle(b, a));
        await this.#o.auditor.record(tx, SYSTEM, {
          action: `authority.${kind}.prune`,
          target: a.id,
          outcome: 'success',
        });
      });
      await this.#deleteKey(a.keyRef);
      await this.#reload();
      this.#o.onChange?.(kind, 'prune');
    }
  }

  /** A prepared authority replaced by a new prepare: it never signed, so it leaves everything. */
  async #discard(a: Authority): Promise<void> {
    await this.#o.store.transaction(async (tx) => {
      await tx.authorities.delete(a.kind, a.id);
      await this.#retireKey(tx, a);
      await this.#mutateBundle(tx, (b) => this.#removeFromBundle(b, a));
    });
    await this.#deleteKey(a.keyRef);
    await this.#reload();
  }

  #publish(b: Bundle, a: Authority): Bundle {
    if (a.kind === 'jwt') {
      return withJwtAuthority(b, {
        kid: a.id,
        publicKeyDer: a.publicKeyDer,
        expiresAt: a.notAfter,
      });
    }
    return withX509Authority(b, this.#o.factory.bundleRoot(a));
  }

  #taintInBundle(b: Bundle, a: Authority): Bundle {
    if (a.kind === 'jwt') {
      return {
        ...b,
        jwtAuthorities: b.jwtAuthorities.map((k) => (k.kid === a.id ? { ...k, tainted: true } : k)),
      };
    }
    const root = this.#o.factory.bundleRoot(a);
    return {
      ...b,
      x509Authorities: b.x509Authorities.map((x) =>
        sameBytes(x.der, root) ? { ...x, tainted: true } : x,
      ),
    };
  }

  /** Removes a's key from the bundle unless another authority still publishes the same root (upstream CA). */
  #removeFromBundle(b: Bundle, a: Authority): Bundle {
    if (a.kind === 'jwt')
      return { ...b, jwtAuthorities: b.jwtAuthorities.filter((k) => k.kid !== a.id) };
    const root = this.#o.factory.bundleRoot(a);
    const shared = this.list('x509').some(
      (o) => o.id !== a.id && sameBytes(this.#o.factory.bundleRoot(o), root),
    );
    if (shared) return b;
    return { ...b, x509Authorities: b.x509Authorities.filter((x) => !sameBytes(x.der, root)) };
  }

  async #mutateBundle(tx: StoreAggregates, fn: (b: Bundle) => Bundle): Promise<void> {
    await tx.bundles.mutate(this.#o.trustDomain, (b) => ({
      ...fn(b),
      refreshHint: this.#o.refreshHintSeconds,
    }));
  }

  async #reload(): Promise<void> {
    this.#authorities = await this.#o.store.authorities.list({ serverId: this.#o.serverId });
    for (const a of this.#authorities) {
      if (this.#keys.has(a.keyRef)) continue;
      const key = await this.#o.keys.get(a.keyRef);
      if (key) this.#keys.set(a.keyRef, key);
    }
  }

  /** In the transaction that removes the authority: from now on its key is ours to delete. */
  async #retireKey(tx: StoreAggregates, a: Authority): Promise<void> {
    await tx.keyJournal.set(this.#o.serverId, a.keyRef, 'retired', this.#o.clock.now());
  }

  /** After the retiring transaction: the file, then the record (a crash between is re-swept). */
  async #deleteKey(keyRef: string): Promise<void> {
    this.#keys.delete(keyRef);
    await this.#o.keys.delete(keyRef);
    await this.#o.store.keyJournal.delete(this.#o.serverId, keyRef);
  }

  /**
   * Start-up: deletes the keys this server's journal retired, and those it began to generate
   * whose authority never committed. Nothing else: a key some authority record still names is
   * kept whatever the journal says, and a key the journal does not mention is not ours to judge.
   */
  async #sweepJournal(): Promise<void> {
    const named = new Set(this.#authorities.map((a) => a.keyRef));
    for (const r of await this.#o.store.keyJournal.list(this.#o.serverId)) {
      if (named.has(r.keyRef) || r.state === 'committed') continue;
      await this.#deleteKey(r.keyRef);
    }
  }

  #find(kind: AuthorityKind, status: AuthorityStatus): Authority | undefined {
    return this.#authorities.find((a) => a.kind === kind && a.status === status);
  }

  #get(kind: AuthorityKind, id: string): Authority | undefined {
    if (!/^[0-9a-f]{32}$/.test(id))
      throw new InvalidArgumentError(`invalid authority id "${id.slice(0, 64)}"`);
    return this.#authorities.find((a) => a.kind === kind && a.id === id);
  }

  #mustActive(kind: AuthorityKind): Authority {
    const a = this.#find(kind, 'active');
    if (!a) throw new FailedPreconditionError(`no active ${kind} authority`);
    return a;
  }

  #keyOf(a: Authority): ManagedKey {
    const key = this.#keys.get(a.keyRef);
    if (!key) throw new MissingAuthorityKeyError(a, this.#o.keys.locate(a.keyRef));
    return key;
  }
}

/** An authority whose private key the key manager no longer has: what to do is in the message. */
export class MissingAuthorityKeyError extends FailedPreconditionError {
  constructor(a: Authority, location: string) {
    super(
      `the private key of the ${a.status} ${a.kind} authority ${a.id} is missing from ` +
        `${location}: restore that file from a backup (and restart the server), or replace the ` +
        `authority: \`tessera authority prepare --kind ${a.kind}\` then ` +
        `\`tessera authority activate --kind ${a.kind}\``,
    );
    this.name = 'MissingAuthorityKeyError';
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}
