// The attestation service's answer per call: entries matched once per call, and a connection's
// repeated calls reuse that match only while the entries are unchanged and none has expired.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Entry } from '../../core/entry.ts';
import type { Selector } from '../../core/selector.ts';
import { AttestationService } from './attestation-service.ts';
import type { ConnectionPeer } from './connection-peer.ts';
import { SyncedEntryMatcher } from './entry-matcher.ts';
import { pinProcess, releasePin } from './process-pin.ts';

function entry(id: string, value: string, expiresAt: number | null = null): Entry {
  return {
    id,
    spiffeId: `spiffe://example.org/${id}`,
    selectors: [{ type: 'unix', value }],
    createdAt: 1,
    expiresAt,
    federatesWith: [],
    hint: '',
  } as unknown as Entry;
}

describe('attestation service: entries per call', () => {
  it('reuses a match while entries are unchanged and unexpired; re-matches on change', async () => {
    let wallNow = 1_000_000;
    const listeners = new Set<() => void>();
    const entries = new Map<string, Entry>([['a', entry('a', 'uid:0', wallNow + 500)]]);
    const sync = {
      entries,
      onChange: (l: () => void) => (listeners.add(l), () => listeners.delete(l)),
    };
    const clock = { now: () => wallNow };
    let attests = 0;
    const svc = new AttestationService({
      selectors: {
        attest: async (): Promise<Selector[]> => {
          attests++;
          return [{ type: 'unix', value: 'uid:0' }];
        },
      },
      entries: new SyncedEntryMatcher(sync, clock),
      clock,
      reuseTtlMs: 60_000,
    });
    const pin = pinProcess(process.pid, undefined);
    const peer: ConnectionPeer = {
      ok: true,
      transport: 'unix',
      caller: { pid: process.pid, uid: 0, gid: 0 },
      pin,
    };
    const signal = new AbortController().signal;
    const first = await svc.attest(peer, signal, { reuse: true });
    assert.deepEqual(
      first.entries.map((e) => e.id),
      ['a'],
    );
    const second = await svc.attest(peer, signal, { reuse: true });
    assert.equal(second, first, 'the same answer, not matched again');
    assert.equal(attests, 1);

    entries.set('b', entry('b', 'uid:0'));
    for (const l of listeners) l();
    const third = await svc.attest(peer, signal, { reuse: true });
    assert.deepEqual(third.entries.map((e) => e.id).sort(), ['a', 'b'], 'a new entry shows');
    assert.equal(attests, 1, 'the attestation itself was reused');

    wallNow += 500; // entry a expires
    const fourth = await svc.attest(peer, signal, { reuse: true });
    assert.deepEqual(
      fourth.entries.map((e) => e.id),
      ['b'],
      'an expired entry is gone',
    );
    assert.ok(Object.isFrozen(fourth) && Object.isFrozen(fourth.entries));

    // A stream re-matches its caller on each change.
    entries.delete('b');
    for (const l of listeners) l();
    assert.deepEqual(svc.rematch(fourth).entries, []);
    releasePin(pin);
    await assert.rejects(svc.attest(peer, signal, { reuse: true }), /could not verify/);
  });

  it('a connection that could not be identified gets Unavailable with the reason', async () => {
    const svc = new AttestationService({
      selectors: { attest: async () => [] },
      entries: { match: () => [] },
    });
    await assert.rejects(
      svc.attest({ ok: false, reason: 'no SO_PEERCRED' }, new AbortController().signal),
      (e: Error) => e.message === 'could not identify the caller' && e.cause === 'no SO_PEERCRED',
    );
  });

  it('logs at debug through the logger as a method (pino needs its `this`)', async () => {
    const lines: string[] = [];
    class MethodLogger {
      readonly #lines = lines;
      debug(_fields: Record<string, unknown>, msg: string): void {
        this.#lines.push(msg);
      }
    }
    const svc = new AttestationService({
      selectors: { attest: async () => [{ type: 'unix', value: 'uid:0' }] },
      entries: { match: () => [] },
      log: new MethodLogger(),
    });
    const pin = pinProcess(process.pid, undefined);
    const peer: ConnectionPeer = {
      ok: true,
      transport: 'unix',
      caller: { pid: process.pid, uid: 0, gid: 0 },
      pin,
    };
    await svc.attest(peer, new AbortController().signal);
    assert.deepEqual(lines, ['workload attested']);
    releasePin(pin);
  });
});
