// Bench helpers: every bench prints a rate and its ratio to a baseline measured in the same run
// (ARCHITECTURE.md "Performance is measured by benchmarks"), so results compare across machines.
import os from 'node:os';

/** Runs `fn` repeatedly for about `ms` milliseconds (after a short warm-up) and returns ops/s. */
export function measure(name: string, fn: () => unknown, ms = 2000): number {
  const deadline = performance.now() + Math.min(200, ms / 10);
  while (performance.now() < deadline) fn();
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  // Check the clock every batch, not every call: performance.now() is not free at µs scales.
  for (let batch = 1; elapsed < ms; batch = Math.min(batch * 2, 256)) {
    for (let i = 0; i < batch; i++) fn();
    n += batch;
    elapsed = performance.now() - start;
  }
  const rate = (n / elapsed) * 1000;
  console.log(`${name.padEnd(48)} ${format(rate)} ops/s`);
  return rate;
}

/** Like measure, for async work, keeping `concurrency` operations in flight. */
export async function measureAsync(
  name: string,
  fn: () => Promise<unknown>,
  ms = 2000,
  concurrency = 1,
): Promise<number> {
  let n = 0;
  const start = performance.now();
  const worker = async (): Promise<void> => {
    while (performance.now() - start < ms) {
      await fn();
      n++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const rate = (n / (performance.now() - start)) * 1000;
  console.log(`${name.padEnd(48)} ${format(rate)} ops/s`);
  return rate;
}

/** Prints value/baseline with the target it must meet, and returns whether it met it. */
export function ratio(name: string, value: number, baseline: number, target?: number): boolean {
  const r = value / baseline;
  const ok = target === undefined || r >= target;
  const goal =
    target === undefined ? '' : ` (target ≥ ${target.toFixed(2)}: ${ok ? 'ok' : 'BELOW'})`;
  console.log(`${('ratio ' + name).padEnd(48)} ${r.toFixed(3)}${goal}`);
  return ok;
}

function format(rate: number): string {
  return Math.round(rate).toLocaleString('en-US').padStart(12);
}

/**
 * Measures a baseline and each subject in alternating rounds and keeps each one's best rate, so
 * a noisy neighbour on a shared machine skews the baseline and the subjects alike.
 */
export async function compare(
  baseline: () => number | Promise<number>,
  subjects: ReadonlyArray<() => number | Promise<number>>,
  rounds = 2,
): Promise<number[] & { baseline: number }> {
  let base = 0;
  const best = subjects.map(() => 0);
  for (let r = 0; r < rounds; r++) {
    base = Math.max(base, await baseline());
    for (const [i, s] of subjects.entries()) best[i] = Math.max(best[i] ?? 0, await s());
  }
  return Object.assign(best, { baseline: base });
}

/** p50, p99 and max of latency samples (nearest rank). */
export function percentiles(xs: readonly number[]): { p50: number; p99: number; max: number } {
  if (xs.length === 0) throw new Error('percentiles: no samples');
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
  return { p50: at(0.5), p99: at(0.99), max: s.at(-1)! };
}

/**
 * The machine's load average beside the core count, flagged when other work competes for the
 * cores (load above half of them): latency and wall-clock rates measured then are pessimistic.
 */
export function loadNote(when: string): string {
  const [one, five] = os.loadavg();
  const cores = os.availableParallelism();
  const busy = one! > cores / 2;
  return `${`machine load (${when})`.padEnd(48)} ${one!.toFixed(2)} (1 min), ${five!.toFixed(2)} (5 min) on ${cores} cores${busy ? ' — NOT QUIET: figures are pessimistic' : ''}`;
}
