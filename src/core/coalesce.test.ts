import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { coalesce } from './coalesce.ts';

/** A run the test finishes by hand, so overlap is decided by the test, not by timing. */
function manualRuns() {
  const pending: Array<{ resolve(): void; reject(e: Error): void }> = [];
  let running = 0;
  let maxRunning = 0;
  const run = () =>
    new Promise<void>((resolve, reject) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      const done = () => running--;
      pending.push({
        resolve: () => (done(), resolve()),
        reject: (e) => (done(), reject(e)),
      });
    });
  return { run, pending, maxRunning: () => maxRunning };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('coalesce', () => {
  it('runs once per call when calls do not overlap', async () => {
    const m = manualRuns();
    const go = coalesce(m.run);
    const first = go();
    m.pending[0]!.resolve();
    await first;
    const second = go();
    assert.equal(m.pending.length, 2);
    m.pending[1]!.resolve();
    await second;
  });

  it('a burst during a run causes exactly one more run, after it; never two at once', async () => {
    const m = manualRuns();
    const go = coalesce(m.run);
    const first = go();
    const burst = Array.from({ length: 10 }, () => go());
    await tick();
    assert.equal(m.pending.length, 1, 'the follow-up waits for the run in progress');
    m.pending[0]!.resolve();
    await first;
    await tick();
    assert.equal(m.pending.length, 2, 'one follow-up for the whole burst');
    let settled = false;
    void Promise.all(burst).then(() => (settled = true));
    await tick();
    assert.equal(settled, false, 'the burst waits for the run that started after it');
    m.pending[1]!.resolve();
    await Promise.all(burst);
    assert.equal(m.maxRunning(), 1);
  });

  it('a failed run rejects its callers and does not stop the follow-up', async () => {
    const m = manualRuns();
    const go = coalesce(m.run);
    const first = go();
    const later = go();
    m.pending[0]!.reject(new Error('db down'));
    await assert.rejects(first, /db down/);
    await tick();
    assert.equal(m.pending.length, 2);
    m.pending[1]!.resolve();
    await later;
    const again = go();
    assert.equal(m.pending.length, 3, 'idle again: a new call starts a run at once');
    m.pending[2]!.resolve();
    await again;
  });
});
