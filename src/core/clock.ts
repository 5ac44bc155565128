// Time is injected: the composition root passes the system clock, tests pass a ManualClock, so
// rotation and expiry are tested without sleeping.

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export class ManualClock implements Clock {
  #now: number;
  constructor(start: number | Date) {
    this.#now = typeof start === 'number' ? start : start.getTime();
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
  set(ms: number): void {
    this.#now = ms;
  }
}
