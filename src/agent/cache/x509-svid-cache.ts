// X.509-SVIDs for the agent's entries. Workload keys are generated here and never leave the
// agent (only CSRs go to the server). SVIDs are minted in batches, rotated at half-life with
// jitter, re-minted when their entry changes what the certificate holds (not for a new hint or
// selector set) or their CA is tainted, and bounded: beyond
// `maxSize` the least recently used are dropped and minted again on demand.
import { X509Certificate, createHash, generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { Clock } from '../../core/clock.ts';
import type { Bundle } from '../../core/bundle.ts';
import type { Entry } from '../../core/entry.ts';
import { halfLifeAt } from '../../core/svid-life.ts';
import { createCsr } from '../../crypto/x509/csr-create.ts';

const generateKeyPairAsync = promisify(generateKeyPair);
const MINT_BATCH = 100;

export interface CachedX509Svid {
  readonly entryId: string;
  readonly spiffeId: string;
  readonly revision: number;
  /** svidShape of the entry it was minted for. */
  readonly shape: string;
  readonly chainDer: readonly Uint8Array[];
  readonly keyPkcs8Der: Uint8Array;
  readonly notBefore: number;
  readonly expiresAt: number;
  readonly rotateAt: number;
  /** sha256 of the bundle CA the chain leads to ("" if none): re-minted when it is tainted. */
  readonly anchor: string;
}

export type MintResult =
  | { entryId: string; ok: true; chainDer: Uint8Array[] }
  | { entryId: string; ok: false; reason: string };

export interface X509SvidCacheOptions {
  /** Sends CSRs to the server (BatchNewX509SVID). */
  mint: (
    params: { entryId: string; csr: Uint8Array; attributes?: Readonly<Record<string, string>> }[],
  ) => Promise<MintResult[]>;
  /**
   * The attributes of a workload that met a conditional entry's condition (docs/posture.md): sent
   * with its mints, as the server evaluates the condition at signing. A conditional entry with
   * none is not minted (no workload qualified for it yet).
   */
  attributesFor?: (entryId: string) => Readonly<Record<string, string>> | undefined;
  clock: Clock;
  maxSize: number;
  random?: () => number;
  /**
   * After a failed mint call (server unreachable, refused), minting pauses this long, doubling
   * per failure up to maxMs; refresh() meanwhile mints nothing and does not fail. Default 1 s → 30 s.
   */
  mintBackoff?: { initialMs: number; maxMs: number };
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export class X509SvidCache {
  readonly #o: X509SvidCacheOptions;
  /** Insertion order = least recently used first. */
  readonly #svids = new Map<string, CachedX509Svid>();
  readonly #listeners = new Set<() => void>();
  #tainted = new Set<string>();
  #cas: { cert: X509Certificate; hash: string }[] = [];
  /** Minting pauses until then after failed mint calls (see mintBackoff). */
  #pausedUntil = 0;
  #pause = 0;
  /** Entry id → the revision being minted by some refresh, settled when that batch is done. */
  readonly #inflight = new Map<string, { revision: number; done: Promise<void> }>();

  constructor(o: X509SvidCacheOptions) {
    this.#o = o;
  }

  get size(): number {
    return this.#svids.size;
  }

  get(entryId: string): CachedX509Svid | undefined {
    const s = this.#svids.get(entryId);
    if (s) {
      this.#svids.delete(entryId);
      this.#svids.set(entryId, s);
    }
    return s;
  }

  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Tainted authorities in a new bundle make their SVIDs due now. */
  setBundle(b: Bundle): void {
    this.#tainted = new Set(b.x509Authorities.filter((a) => a.tainted).map((a) => sha256(a.der)));
    this.#cas = b.x509Authorities.map((a) => ({
      cert: new X509Certificate(Buffer.from(a.der)),
      hash: sha256(a.der),
    }));
  }

  /**
   * Brings the cache in line with `entries`: drops SVIDs of removed entries, mints what is missing
   * (the `wanted` ones first, then the rest up to maxSize) and re-mints what is due.
   */
  async refresh(
    entries: ReadonlyMap<string, Entry>,
    wanted: readonly string[] = [],
  ): Promise<void> {
    let changed = false;
    for (const id of [...this.#svids.keys()]) {
      if (!entries.has(id)) changed = this.#svids.delete(id) || changed;
    }
    const now = this.#o.clock.now();
    const due: Entry[] = [];
    const consider = [...new Set([...wanted, ...this.#svids.keys(), ...entries.keys()])];
    for (const id of consider) {
      const e = entries.get(id);
      if (!e) continue;
      let s = this.#svids.get(id);
      if ((e.condition ?? '') !== '' && !this.#o.attributesFor?.(id)) continue;
      if (!s && due.length + this.#svids.size >= this.#o.maxSize && !wanted.includes(id)) continue;
      // A change that does not show in the certificate (hint, selectors, federation) keeps it.
      if (s && s.revision !== e.revision && s.shape === svidShape(e)) {
        s = { ...s, revision: e.revision };
        this.#svids.set(id, s);
      }
      if (!s || s.revision !== e.revision || now >= s.rotateAt || this.#tainted.has(s.anchor))
        due.push(e);
    }
    // While paused after failures, keep what is cached and ask the server nothing.
    if (now < this.#pausedUntil) due.length = 0;
    // Concurrent refreshes (the rotation timer, a workload's on-demand call) never mint the same
    // entry revision twice: what another refresh is minting is waited for (if wanted), not redone.
    const waits: Promise<void>[] = [];
    const mine = due.filter((e) => {
      const other = this.#inflight.get(e.id);
      if (!other || other.revision !== e.revision) return true;
      if (wanted.includes(e.id)) waits.push(other.done);
      return false;
    });
    const batches: { entries: Entry[]; done: () => void }[] = [];
    for (let i = 0; i < mine.length; i += MINT_BATCH) {
      const batch = mine.slice(i, i + MINT_BATCH);
      let done = () => {};
      const settled = new Promise<void>((r) => (done = r));
      for (const e of batch) this.#inflight.set(e.id, { revision: e.revision, done: settled });
      batches.push({ entries: batch, done });
    }
    const release = (b: (typeof batches)[number]) => {
      this.#settle(b.entries);
      b.done();
    };
    for (const [i, b] of batches.entries()) {
      try {
        changed = (await this.#mint(b.entries, entries)) || changed;
      } catch (e) {
        batches.slice(i).forEach(release);
        throw e;
      }
      release(b);
    }
    await Promise.all(waits);
    while (this.#svids.size > this.#o.maxSize) {
      const oldest = this.#svids.keys().next().value as string;
      this.#svids.delete(oldest);
      changed = true;
    }
    if (changed) for (const fn of this.#listeners) fn();
  }

  /** Drops the in-flight marks these entries hold (unless a newer revision took them over). */
  #settle(batch: readonly Entry[]): void {
    for (const e of batch) {
      if (this.#inflight.get(e.id)?.revision === e.revision) this.#inflight.delete(e.id);
    }
  }

  async #mint(batch: readonly Entry[], entries: ReadonlyMap<string, Entry>): Promise<boolean> {
    const keys = await Promise.all(batch.map(() => newKey()));
    let results: MintResult[];
    try {
      results = await this.#o.mint(
        batch.map((e, i) => {
          const attributes = this.#o.attributesFor?.(e.id);
          return {
            entryId: e.id,
            csr: createCsr(keys[i] as KeyObject),
            ...(attributes ? { attributes } : {}),
          };
        }),
      );
    } catch (e) {
      this.#failed(e);
      throw e;
    }
    this.#pause = 0;
    this.#pausedUntil = 0;
    let changed = false;
    for (const [i, r] of results.entries()) {
      const entry = batch[i];
      if (!entry || !entries.has(entry.id)) continue;
      if (!r.ok) {
        this.#o.log?.('could not mint an X.509-SVID', { entryId: entry.id, reason: r.reason });
        continue;
      }
      this.#svids.delete(entry.id);
      this.#svids.set(entry.id, this.#cached(entry, r.chainDer, keys[i] as KeyObject));
      changed = true;
    }
    return changed;
  }

  /** Pauses minting (exponential backoff); logs once per run of failures, not per attempt. */
  #failed(e: unknown): void {
    const { initialMs, maxMs } = this.#o.mintBackoff ?? { initialMs: 1000, maxMs: 30_000 };
    if (this.#pause === 0)
      this.#o.log?.('could not mint X.509-SVIDs; pausing minting with backoff', {
        reason: (e as Error).message,
      });
    this.#pause = this.#pause === 0 ? initialMs : Math.min(this.#pause * 2, maxMs);
    this.#pausedUntil = this.#o.clock.now() + this.#pause;
  }

  #cached(entry: Entry, chainDer: Uint8Array[], key: KeyObject): CachedX509Svid {
    const leaf = new X509Certificate(Buffer.from(chainDer[0] ?? new Uint8Array()));
    const notBefore = Date.parse(leaf.validFrom);
    const expiresAt = Date.parse(leaf.validTo);
    // Half of the life left on arrival (notBefore is backdated: core/svid-life.ts), pulled
    // earlier by up to a tenth of that life so that SVIDs issued together do not all come back
    // together.
    const halfLife = halfLifeAt(notBefore, expiresAt, this.#o.clock.now());
    const jitter = (this.#o.random ?? Math.random)() * ((expiresAt - halfLife) / 5);
    const top = new X509Certificate(Buffer.from(chainDer[chainDer.length - 1] ?? new Uint8Array()));
    const anchor = this.#cas.find(
      (ca) => top.checkIssued(ca.cert) && top.verify(ca.cert.publicKey),
    );
    return {
      entryId: entry.id,
      spiffeId: entry.spiffeId,
      revision: entry.revision,
      shape: svidShape(entry),
      chainDer,
      keyPkcs8Der: new Uint8Array(key.export({ type: 'pkcs8', format: 'der' })),
      notBefore,
      expiresAt,
      rotateAt: halfLife - jitter,
      anchor: anchor?.hash ?? '',
    };
  }

  /** Earliest time something is due (for the rotation timer). */
  nextDue(): number {
    let next = Infinity;
    for (const s of this.#svids.values()) next = Math.min(next, s.rotateAt);
    return next;
  }
}

/** The entry fields an X.509-SVID is made from; a change of any of them re-mints it. */
function svidShape(e: Entry): string {
  return JSON.stringify([
    e.spiffeId,
    e.dnsNames,
    e.x509SvidTtl,
    e.expiresAt,
    e.admin,
    e.downstream,
  ]);
}

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

async function newKey(): Promise<KeyObject> {
  return (await generateKeyPairAsync('ec', { namedCurve: 'P-256' })).privateKey;
}
