// followAudit against the real SQLite store: the backlog, wake-ups on this server's appends, the
// poll that finds other servers' appends, filters, and a clean end on abort.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AuditRecord } from '../../core/audit.ts';
import { ManualClock } from '../../core/clock.ts';
import { T0 } from '../../store/conformance/fixtures.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import type { RequestContext } from '../../core/caller.ts';
import { Auditor } from './auditor.ts';
import { followAudit } from './follow.ts';

const ctx: RequestContext = { caller: { kind: 'local-admin' }, correlationId: 'c1' };

describe('followAudit', () => {
  let dir: string;
  let store: Store;
  let auditor: Auditor;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-follow-'));
    const clock = new ManualClock(T0);
    store = await openStore({ kind: 'sqlite', path: path.join(dir, 'db') }, clock);
    auditor = new Auditor(clock, store);
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const log = (action: string) => auditor.log(ctx, { action, target: 't', outcome: 'success' });

  it('yields the backlog in batches, then records this server appends (no poll needed)', async () => {
    for (let i = 0; i < 5; i++) await log('entry.create');
    const ac = new AbortController();
    const it = followAudit({
      audit: store.audit,
      onAppend: (l) => auditor.onAppend(l),
      filter: { afterSeq: 1 },
      signal: ac.signal,
      // Only a wake-up can deliver the later records within the test's lifetime.
      pollMs: 3_600_000,
      batch: 3,
    })[Symbol.asyncIterator]();
    const seqs = (b: IteratorResult<AuditRecord[]>) => (b.done ? [] : b.value.map((r) => r.seq));
    assert.deepEqual(seqs(await it.next()), [2, 3, 4]);
    assert.deepEqual(seqs(await it.next()), [5]);
    const next = it.next();
    await log('entry.delete');
    assert.deepEqual(seqs(await next), [6]);
    // Through a transaction: the wake comes before the commit, the re-read finds it.
    const inTx = it.next();
    await store.transaction((tx) =>
      auditor.record(tx, ctx, { action: 'entry.update', target: 't', outcome: 'success' }),
    );
    assert.deepEqual(seqs(await inTx), [7]);
    const ended = it.next();
    ac.abort();
    assert.equal((await ended).done, true);
  });

  it('polls for records appended by another server, honouring the filter', async () => {
    const ac = new AbortController();
    const start = (await store.audit.tail(1))[0]?.seq ?? 0;
    const it = followAudit({
      audit: store.audit,
      onAppend: () => () => {},
      filter: { afterSeq: start, action: 'agent.ban' },
      signal: ac.signal,
      pollMs: 20,
    })[Symbol.asyncIterator]();
    const next = it.next();
    // Written straight to the store, as another server sharing the database would.
    const event = {
      time: T0,
      actor: 'x',
      target: 't',
      outcome: 'success',
      correlationId: 'c',
      details: {},
    } as const;
    await store.audit.appendMany([
      { ...event, action: 'entry.create' },
      { ...event, action: 'agent.ban' },
    ]);
    const batch = await next;
    assert.equal(batch.done, false);
    assert.deepEqual(
      batch.value?.map((r) => [r.seq, r.action]),
      [[start + 2, 'agent.ban']],
    );
    ac.abort();
    assert.equal((await it.next()).done, true);
  });
});
