// Key-encryption keys of the secret store at work: the start-up check, the first KEK, and KEK
// rotation (docs/access.md, "Secret store"). The datastore's KEK records are the journal that
// makes each step crash-safe:
//
//   1. record the new KEK `pending` with no check value, before its key exists;
//   2. create the key (durable), then record its check value;
//   3. re-wrap every data key under it, each one its own conditional update;
//   4. in one transaction: retire the old KEKs, prove nothing refers to them, activate the new one,
//      audit `secret.kek.rotate`;
//   5. destroy each retired KEK that nothing refers to, then forget its record.
//
// kill -9 between any two steps leaves every version wrapped by a KEK whose key exists, so every
// secret reads as its old or new version; the next start finishes (pending with a check value:
// steps 3–5) or rolls back (pending without one: its key, if created, is destroyed) the rotation.
// A key is destroyed only when its record proves this store made it and nothing refers to it.
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../core/clock.ts';
import {
  AlreadyExistsError,
  ConflictError,
  FailedPreconditionError,
  UnavailableError,
} from '../../core/errors.ts';
import { dataKeyAad } from '../../crypto/secrets/envelope.ts';
import type { KekManager } from '../../plugins/kek-managers/catalog.ts';
import type { KekRecord, Store } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../../core/caller.ts';

const BATCH = 100;
/** Switch attempts while writers keep adding versions under the old KEK. */
const SWITCH_ATTEMPTS = 5;

/** The context of what the server does by itself at start (first KEK, resumed rotation). */
export const STARTUP_CONTEXT: RequestContext = {
  caller: { kind: 'local-admin' },
  correlationId: 'startup',
};

export interface KekKeeperOptions {
  readonly store: Store;
  readonly kek: KekManager;
  readonly auditor: Auditor;
  readonly clock: Clock;
  /** This server's id: the owner of the KEKs it creates. */
  readonly serverId: string;
  /** Test hook: called after each re-wrapped data key (to stop a rotation midway). */
  readonly onRewrap?: () => void;
}

export interface KekRotationResult {
  readonly kekId: string;
  readonly rewrapped: number;
}

export class KekKeeper {
  readonly #o: KekKeeperOptions;
  /** Rotations of this process, one at a time. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(o: KekKeeperOptions) {
    this.#o = o;
  }

  /**
   * Checks every KEK the datastore needs against the manager (missing or wrong key:
   * FailedPreconditionError naming where) and rolls back or finishes an interrupted rotation.
   */
  static async start(o: KekKeeperOptions): Promise<KekKeeper> {
    const k = new KekKeeper(o);
    await k.#recover();
    return k;
  }

  /**
   * The id of the active KEK (new data keys are wrapped by it). The first KEK is made here, when
   * the first secret is stored — not at start — so servers that share a datastore but keep no
   * secrets need no KEK files copied between them.
   */
  async activeId(): Promise<string> {
    const find = async () =>
      (await this.#o.store.secrets.listKeks()).find((k) => k.state === 'active');
    let active = await find();
    if (!active) {
      const run = this.#queue.then(async () => {
        if (!(await find())) await this.#first();
      });
      this.#queue = run.catch(() => {});
      await run;
      active = await find();
    }
    if (!active) throw new UnavailableError('secret store: no active key-encryption key');
    return active.id;
  }

  /** A new KEK; every data key re-wrapped under it; the old ones retired and destroyed. */
  rotate(ctx: RequestContext): Promise<KekRotationResult> {
    const run = this.#queue.then(() => this.#rotate(ctx, false));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #recover(): Promise<void> {
    const { store, kek } = this.#o;
    for (const k of await store.secrets.listKeks()) {
      if (k.state === 'pending' && k.owner !== this.#o.serverId) {
        // Another server's rotation, maybe in progress: not ours to finish or roll back. Its
        // key must be here (copied) once it is active; until then nothing is wrapped by it.
        continue;
      } else if (k.state === 'pending' && k.checkValue === '') {
        // Step 1 or 2 was cut short: nothing is wrapped by it yet. The record proves the key ours.
        await kek.destroy(k.id);
        await store.secrets.deleteKek(k.id);
      } else if (k.state === 'retired' && (await store.secrets.countWrappedBy(k.id)) === 0) {
        await this.#forget(k.id);
      } else {
        await kek.verify(k.id, k.checkValue);
      }
    }
    const keks = await store.secrets.listKeks();
    if (keks.some((k) => k.state === 'pending' && k.owner === this.#o.serverId)) {
      await this.#rotate(STARTUP_CONTEXT, true);
    }
  }

  async #first(): Promise<void> {
    const { store } = this.#o;
    const k = await this.#newPending();
    try {
      await this.#activateFirst(k);
    } catch (e) {
      if (!(e instanceof AlreadyExistsError)) throw e;
      // Another server sharing the datastore made the first KEK at the same moment: ours goes,
      // and theirs must be here too (its file copied), or this start stops naming it.
      await this.#forget(k.id);
      for (const other of await store.secrets.listKeks()) {
        await this.#o.kek.verify(other.id, other.checkValue);
      }
    }
  }

  async #activateFirst(k: KekRecord): Promise<void> {
    const { store, auditor } = this.#o;
    await store.transaction(async (tx) => {
      await tx.secrets.updateKek(k.id, 'active', k.checkValue, this.#o.clock.now());
      await auditor.record(tx, STARTUP_CONTEXT, {
        action: 'secret.kek.create',
        target: k.id,
        outcome: 'success',
        details: { kekId: k.id },
      });
    });
  }

  /** Steps 1 and 2: a pending record, then the durable key and its check value. */
  async #newPending(): Promise<KekRecord> {
    const { store, kek, clock } = this.#o;
    const id = randomBytes(8).toString('hex');
    const now = clock.now();
    await store.secrets.addKek({
      id,
      state: 'pending',
      owner: this.#o.serverId,
      checkValue: '',
      createdAt: now,
      updatedAt: now,
    });
    const checkValue = await kek.create(id);
    await store.secrets.updateKek(id, 'pending', checkValue, clock.now());
    return {
      id,
      state: 'pending',
      owner: this.#o.serverId,
      checkValue,
      createdAt: now,
      updatedAt: clock.now(),
    };
  }

  async #rotate(ctx: RequestContext, resumed: boolean): Promise<KekRotationResult> {
    const { store } = this.#o;
    const keks = await store.secrets.listKeks();
    const foreign = keks.find((k) => k.state === 'pending' && k.owner !== this.#o.serverId);
    if (foreign) {
      throw new FailedPreconditionError(
        `secret store: a KEK rotation by server ${foreign.owner} is in progress (KEK ${foreign.id}); try again when it has finished`,
      );
    }
    // This server's interrupted rotation: finish that one.
    const target =
      keks.find((k) => k.state === 'pending' && k.checkValue !== '') ?? (await this.#newPending());
    let rewrapped = 0;
    for (let attempt = 1; ; attempt++) {
      const old = (await store.secrets.listKeks()).filter((k) => k.id !== target.id);
      for (const o of old) rewrapped += await this.#rewrapAll(o.id, target.id);
      try {
        await this.#switch(ctx, target.id, old, rewrapped, resumed);
        break;
      } catch (e) {
        if (!(e instanceof ConflictError) || attempt >= SWITCH_ATTEMPTS) throw e;
      }
    }
    for (const k of await store.secrets.listKeks()) {
      if (k.state === 'retired' && (await store.secrets.countWrappedBy(k.id)) === 0) {
        await this.#forget(k.id);
      }
    }
    return { kekId: target.id, rewrapped };
  }

  /** Step 3 for every version wrapped by `from`. */
  async #rewrapAll(from: string, to: string): Promise<number> {
    const { store, kek } = this.#o;
    let n = 0;
    for (;;) {
      const batch = await store.secrets.wrappedBy(from, BATCH);
      if (batch.length === 0) return n;
      for (const v of batch) {
        const dataKey = await kek
          .unwrap(from, v.wrappedKey, dataKeyAad(v, from))
          .catch((e: unknown) => {
            throw new FailedPreconditionError(
              `secret store: the data key of secret "${v.name}" version ${v.version} cannot be ` +
                `unwrapped with KEK ${from}: ${(e as Error).message}`,
              { cause: e },
            );
          });
        const wrapped = await kek.wrap(to, dataKey, dataKeyAad(v, to));
        dataKey.fill(0);
        if (await store.secrets.rewrap(v.name, v.version, from, to, wrapped)) n++;
        this.#o.onRewrap?.();
      }
    }
  }

  /** Step 4: all or nothing; ConflictError when a writer added a version under an old KEK. */
  async #switch(
    ctx: RequestContext,
    to: string,
    old: readonly KekRecord[],
    rewrapped: number,
    resumed: boolean,
  ): Promise<void> {
    const { store, auditor, clock } = this.#o;
    await store.transaction(async (tx) => {
      const now = clock.now();
      // Retiring first takes the row locks writers share (SecretStore.putVersion): once this
      // holds them, no version can be added under an old KEK any more.
      for (const o of old) await tx.secrets.updateKek(o.id, 'retired', o.checkValue, now);
      for (const o of old) {
        if ((await tx.secrets.countWrappedBy(o.id)) > 0) {
          throw new ConflictError(`KEK ${o.id} got new data keys during the rotation`);
        }
      }
      const target = (await tx.secrets.listKeks()).find((k) => k.id === to);
      if (!target) throw new FailedPreconditionError(`KEK ${to} disappeared during the rotation`);
      await tx.secrets.updateKek(to, 'active', target.checkValue, now);
      await auditor.record(tx, ctx, {
        action: 'secret.kek.rotate',
        target: to,
        outcome: 'success',
        details: {
          kekId: to,
          previous: old.filter((o) => o.state !== 'retired').map((o) => o.id),
          rewrapped,
          resumed,
        },
      });
    });
  }

  /** Step 5 for one retired KEK nothing refers to: the key first, then the record. */
  async #forget(id: string): Promise<void> {
    await this.#o.kek.destroy(id);
    await this.#o.store.secrets.deleteKek(id);
  }
}
