// A single-consumer async queue: lets a callback-driven flow (attestation challenges, change
// notifications) feed an async generator or a bidi stream's request side.
export class AsyncQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #waiter: (() => void) | null = null;
  #closed = false;
  #error: unknown = null;
  readonly #limit: number;

  constructor(limit = 1000) {
    this.#limit = limit;
  }

  push(item: T): void {
    if (this.#closed) return;
    if (this.#items.length >= this.#limit) {
      this.fail(new Error('queue overflow: the consumer is too slow'));
      return;
    }
    this.#items.push(item);
    this.#wake();
  }

  close(): void {
    this.#closed = true;
    this.#wake();
  }

  fail(error: unknown): void {
    this.#error ??= error;
    this.close();
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = null;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const item = this.#items.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.#error) throw this.#error;
      if (this.#closed) return;
      await new Promise<void>((resolve) => (this.#waiter = resolve));
    }
  }
}
