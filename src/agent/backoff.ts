// Exponential backoff with full jitter, bounded, abortable. Randomness is injected for tests.
export class Backoff {
  readonly #base: number;
  readonly #max: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(o: { baseMs?: number; maxMs: number; random?: () => number }) {
    this.#base = o.baseMs ?? 250;
    this.#max = o.maxMs;
    this.#random = o.random ?? Math.random;
  }

  reset(): void {
    this.#attempt = 0;
  }

  /** The next delay: uniform in [d/2, d] where d doubles per attempt up to the cap. */
  next(): number {
    const d = Math.min(this.#max, this.#base * 2 ** Math.min(this.#attempt++, 20));
    return d / 2 + this.#random() * (d / 2);
  }

  wait(signal: AbortSignal): Promise<void> {
    const ms = this.next();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
