// X509Source: the workload's X509-SVIDs and trust bundles, kept current from the Workload API
// stream (rotations arrive as new messages; the stream is reopened with backoff when it breaks).
import { FailedPreconditionError, UnavailableError, type TesseraError } from '../../core/errors.ts';
import { TrustDomain } from '../../core/spiffe-id.ts';
import type {
  Updatable,
  X509BundleSet,
  X509BundleSource,
  X509Context,
  X509Svid,
  X509SvidSource,
} from './types.ts';
import { Listeners, Watcher, type WatcherOptions } from './watcher.ts';

export type X509SvidPicker = (svids: readonly X509Svid[]) => X509Svid | undefined;

export interface X509SourceOptions extends WatcherOptions {
  /** Chooses the SVID getX509Svid() returns; default: the first (the default identity). */
  readonly picker?: X509SvidPicker;
}

/** A picker for the SVID with this hint (the first one, if the server repeated it). */
export function pickByHint(hint: string): X509SvidPicker {
  return (svids) => svids.find((s) => s.hint === hint);
}

export class X509Source implements X509SvidSource, X509BundleSource, Updatable {
  readonly #w: Watcher<X509Context>;
  readonly #picker: X509SvidPicker;
  readonly #updates = new Listeners<[X509Context]>();
  #ctx: X509Context | undefined;

  /** Starts watching at once; await ready() (or use X509Source.open) before reading. */
  constructor(o: X509SourceOptions = {}) {
    this.#picker = o.picker ?? ((svids) => svids[0]);
    this.#w = new Watcher<X509Context>(o);
    this.#w.start(
      (c, s) => c.watchX509Context(s),
      (ctx) => this.#apply(ctx),
      o,
    );
  }

  /** A source whose first update has arrived; closed again if it fails or times out. */
  static async open(o: X509SourceOptions & { timeoutMs?: number } = {}): Promise<X509Source> {
    const src = new X509Source(o);
    try {
      await withTimeout(src.ready(), o.timeoutMs);
      return src;
    } catch (e) {
      await src.close();
      throw e;
    }
  }

  /** Resolves with the first X509-SVID response; rejects on a non-retryable error or close(). */
  ready(): Promise<void> {
    return this.#w.ready();
  }

  /** The picked SVID (default: the first). Throws before the first update or after close(). */
  getX509Svid(): X509Svid {
    const svid = this.#picker(this.#context().svids);
    if (!svid) throw new FailedPreconditionError('no X509-SVID matches the picker');
    return svid;
  }

  getX509Svids(): readonly X509Svid[] {
    return this.#context().svids;
  }

  /** CA certificates (DER) of a trust domain ("example.org" or "spiffe://example.org"). */
  getX509BundleForTrustDomain(trustDomain: string): readonly Uint8Array[] | undefined {
    return this.#context().bundles.get(TrustDomain.parse(trustDomain).name);
  }

  getX509Bundles(): X509BundleSet {
    return this.#context().bundles;
  }

  /** Called with every new context (rotation, bundle change); returns an unsubscribe. */
  onUpdate(listener: (ctx: X509Context) => void): () => void {
    return this.#updates.add(listener);
  }

  /** Called with each failure of the stream (retried or not). */
  onError(listener: (e: TesseraError) => void): () => void {
    return this.#w.errors.add(listener);
  }

  close(): Promise<void> {
    return this.#w.close();
  }

  #apply(ctx: X509Context): void {
    this.#ctx = ctx;
    this.#updates.emit(ctx);
  }

  #context(): X509Context {
    if (this.#w.closed) throw new FailedPreconditionError('the X509Source is closed');
    if (!this.#ctx) throw new FailedPreconditionError('the X509Source has no SVID yet');
    return this.#ctx;
  }
}

export async function withTimeout<T>(p: Promise<T>, ms: number | undefined): Promise<T> {
  if (ms === undefined) return p;
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(
      () => reject(new UnavailableError(`no Workload API response within ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(t);
  }
}
