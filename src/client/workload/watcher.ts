// The reconnect loop shared by X509Source and JwtSource: keep a Workload API stream open, hand
// every message to the source, and after a retryable failure (Unavailable, PermissionDenied, a
// broken or ended stream) reopen it after an exponential backoff with jitter. InvalidArgument and
// Unimplemented stop the loop for good (Workload Endpoint spec §6).
import { FailedPreconditionError, UnavailableError, type TesseraError } from '../../core/errors.ts';
import { Backoff, defaultSleep, type BackoffOptions, type Sleep } from './backoff.ts';
import { isRetryable, toWorkloadError } from './errors.ts';
import { WorkloadClient, type WorkloadClientOptions } from './workload-client.ts';

export interface WatcherOptions extends WorkloadClientOptions {
  /** A client to share; the source does not close it. Default: one of its own. */
  readonly client?: WorkloadClient;
  readonly backoff?: BackoffOptions;
  readonly sleep?: Sleep;
}

/** A tiny listener list; a throwing listener does not stop the others. */
export class Listeners<A extends unknown[]> {
  readonly #fns = new Set<(...a: A) => void>();
  add(fn: (...a: A) => void): () => void {
    this.#fns.add(fn);
    return () => this.#fns.delete(fn);
  }
  emit(...a: A): void {
    for (const fn of [...this.#fns]) {
      try {
        fn(...a);
      } catch {
        // A listener's failure is its own; the source keeps going.
      }
    }
  }
}

export class Watcher<T> {
  readonly client: WorkloadClient;
  readonly errors = new Listeners<[TesseraError]>();
  readonly #ownsClient: boolean;
  readonly #abort = new AbortController();
  readonly #ready: Promise<void>;
  #resolveReady!: () => void;
  #rejectReady!: (e: unknown) => void;
  #loop: Promise<void> | undefined;
  #fatal: TesseraError | undefined;

  constructor(o: WatcherOptions) {
    this.#ownsClient = o.client === undefined;
    this.client = o.client ?? new WorkloadClient(o);
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.#ready.catch(() => {});
  }

  get closed(): boolean {
    return this.#abort.signal.aborted;
  }

  /** The error that stopped the loop, if any. */
  get fatalError(): TesseraError | undefined {
    return this.#fatal;
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  start(
    open: (c: WorkloadClient, s: AbortSignal) => AsyncIterable<T>,
    apply: (v: T) => void,
    o: WatcherOptions,
  ): void {
    const backoff = new Backoff(o.backoff);
    const sleep = o.sleep ?? defaultSleep;
    const onValue = (v: T): void => {
      backoff.reset();
      apply(v);
      this.#resolveReady();
    };
    this.#loop = this.#run((s) => open(this.client, s), onValue, backoff, sleep);
  }

  async #run(
    open: (s: AbortSignal) => AsyncIterable<T>,
    onValue: (v: T) => void,
    backoff: Backoff,
    sleep: Sleep,
  ): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      let err: unknown = new UnavailableError('Workload API stream ended');
      try {
        for await (const v of open(signal)) onValue(v);
      } catch (e) {
        err = e;
      }
      if (signal.aborted) return;
      const te = toWorkloadError(err);
      this.errors.emit(te);
      if (!isRetryable(te)) {
        this.#fatal = te;
        this.#rejectReady(te);
        return;
      }
      await sleep(backoff.next(), signal);
    }
  }

  async close(): Promise<void> {
    if (!this.#abort.signal.aborted) {
      this.#abort.abort();
      this.#rejectReady(new FailedPreconditionError('the source was closed'));
    }
    await this.#loop;
    if (this.#ownsClient) this.client.close();
  }
}
