// Callers of open streams re-checked while they run (running-callers.ts, through the attestation
// service): one fingerprint read per process and tick, a fresh attestation only when it moved,
// the stream told only when its selectors or attributes changed, and an error once the process
// has gone. Real processes (a shell that exec()s, a sleeper that is killed); waits are bounded.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { describe, it } from 'node:test';
import { UnavailableError } from '../../core/errors.ts';
import type { Selector } from '../../core/selector.ts';
import { AttestationService } from './attestation-service.ts';
import type { AttestedCaller, CallerProcess } from './caller.ts';
import type { ConnectionPeer } from './connection-peer.ts';
import { pidfdOpen } from './peer-credentials.ts';
import { asleep, exeOf, stop, until } from './testing/processes.ts';
import { pinProcess, releasePin } from './process-pin.ts';
import { RunningCallers, sameIdentity, type CallerChange } from './running-callers.ts';

function caller(pid: number, selectors: Selector[], attributes = {}): AttestedCaller {
  return {
    process: { pid, uid: 0, gid: 0 },
    transport: 'unix',
    selectors,
    attributes,
    entries: [],
  };
}

/** A peer pinned on `pid` (with its pidfd where the kernel has one). */
function peerOf(pid: number): ConnectionPeer & { ok: true } {
  const pin = pinProcess(pid, pidfdOpen(pid));
  return { ok: true, transport: 'unix', caller: { pid, uid: 0, gid: 0 }, pin };
}

describe('running callers', () => {
  it('reads each process once per tick, however many streams it holds; attests again only when it moved', async () => {
    const peer = peerOf(process.pid);
    let fingerprint = 'a';
    let reads = 0;
    const reattests: string[] = [];
    let next = caller(process.pid, [{ type: 'unix', value: 'uid:0' }]);
    const running = new RunningCallers({
      intervalMs: 10,
      fingerprint: () => (reads++, fingerprint),
      reattest: async () => {
        reattests.push(fingerprint);
        return { caller: next, before: fingerprint };
      },
    });
    const heard: CallerChange[][] = [[], []];
    const first = caller(process.pid, [{ type: 'unix', value: 'uid:0' }]);
    const stops = heard.map((h) => running.watch(peer, first, 'a', (c) => h.push(c)));
    try {
      await until(() => reads >= 3, 'three ticks');
      assert.equal(reattests.length, 0, 'unchanged: never attested again');
      // Two streams, one process: one read per tick.
      const ticks = reads;
      await until(() => reads >= ticks + 2, 'two more ticks');
      // Moved, same identity (a JIT's mapping, a library outside the attributes): attested
      // once, nobody told.
      fingerprint = 'b';
      await until(() => reattests.length === 1, 'a re-attestation');
      await until(() => reads >= ticks + 5, 'more ticks');
      assert.deepEqual(reattests, ['b'], 'attested once for both streams, then at rest');
      assert.equal(heard.flat().length, 0, 'nobody told');
      // Moved, new attributes: both streams hear their new self.
      next = caller(process.pid, [{ type: 'unix', value: 'uid:0' }], { 'library.0': 'x' });
      fingerprint = 'c';
      await until(() => heard.every((h) => h.length === 1), 'both streams told');
      for (const h of heard) assert.deepEqual(h, [{ caller: next }]);
      // A stream that stops watching hears nothing more; the last one stops the timer.
      stops[0]!();
      assert.equal(running.size, 1);
      stops[1]!();
      assert.equal(running.size, 0);
    } finally {
      stops.forEach((s) => s());
      releasePin(peer.pin);
    }
  });

  it('ends the streams of a process that has gone, and of one that cannot be attested again', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    await until(() => exeOf(child.pid!).endsWith('sleep'), 'sleep');
    const peer = peerOf(child.pid!);
    const running = new RunningCallers({
      intervalMs: 10,
      fingerprint: () => undefined, // unreadable: then the pin says whether it lives
      reattest: () => Promise.reject(new UnavailableError('workload attestation failed')),
    });
    const heard: CallerChange[] = [];
    const off = running.watch(peer, caller(child.pid!, []), undefined, (c) => heard.push(c));
    try {
      // Unknown before, unreadable now, still alive: nothing to compare, nothing done.
      await new Promise((r) => setImmediate(r));
      await running.tick();
      assert.equal(heard.length, 0);
      await stop(child);
      await until(() => heard.length === 1, 'the end');
      assert.ok('error' in heard[0]!);
      assert.match(heard[0].error.message, /could not verify existence of the original caller/);
      assert.equal(running.size, 0);
    } finally {
      off();
      releasePin(peer.pin);
      await stop(child);
    }

    const alive = peerOf(process.pid);
    const failing = new RunningCallers({
      intervalMs: 10,
      fingerprint: () => 'moved',
      reattest: () => Promise.reject(new UnavailableError('workload attestation failed')),
    });
    const told: CallerChange[] = [];
    const off2 = failing.watch(alive, caller(process.pid, []), 'before', (c) => told.push(c));
    try {
      await until(() => told.length === 1, 'the end');
      assert.ok('error' in told[0]! && told[0].error instanceof UnavailableError);
    } finally {
      off2();
      releasePin(alive.pin);
    }
  });

  it('compares selectors as a set, and attributes', () => {
    const a = caller(1, [
      { type: 'unix', value: 'uid:0' },
      { type: 'unix', value: 'gid:0' },
    ]);
    const b = caller(1, [
      { type: 'unix', value: 'gid:0' },
      { type: 'unix', value: 'uid:0' },
    ]);
    assert.equal(sameIdentity(a, b), true);
    assert.equal(sameIdentity(a, caller(1, [{ type: 'unix', value: 'uid:0' }])), false);
    assert.equal(sameIdentity(a, { ...b, attributes: { 'kernel.release': '6' } }), false);
  });
});

describe('attestation service: a watched caller', () => {
  /** Selectors from the kernel now: the executable's path. */
  const source = {
    attestCalls: 0,
    async attest(c: CallerProcess): Promise<Selector[]> {
      this.attestCalls++;
      return [{ type: 'unix', value: `path:${readlinkSync(`/proc/${c.pid}/exe`)}` }];
    },
  };

  it('is attested again after exec() and its stream hears the new binary; once it exits, the error', async () => {
    const svc = new AttestationService({
      selectors: source,
      entries: { match: () => [] },
      recheckMs: 20,
    });
    const child = spawn('sh', ['-c', 'read line; exec sleep 30'], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    try {
      // Waiting in `read`: its libraries mapped (they are in the fingerprint).
      await until(() => exeOf(child.pid!).endsWith('sh') && asleep(child.pid!), 'sh');
      const peer = peerOf(child.pid!);
      const first = await svc.attest(peer, new AbortController().signal, { reuse: true });
      assert.match(first.selectors[0]!.value, /sh$/);
      const heard: CallerChange[] = [];
      const off = svc.watch(peer, first, (c) => heard.push(c));
      try {
        const calls = source.attestCalls;
        child.stdin!.write('go\n');
        await until(() => heard.length === 1, 'the new binary');
        const now = (heard[0] as { caller: AttestedCaller }).caller;
        assert.match(now.selectors[0]!.value, /sleep$/);
        assert.equal(source.attestCalls, calls + 1);
        await stop(child);
        await until(() => heard.length === 2, 'the end');
        assert.ok('error' in heard[1]! && heard[1].error instanceof UnavailableError);
      } finally {
        off();
        svc.release(peer);
      }
    } finally {
      await stop(child);
    }
  });
});
