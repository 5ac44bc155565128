// verifyAuditLog over the real SQLite store, its rows edited underneath it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { GENESIS_HASH } from '../../core/audit.ts';
import { ManualClock } from '../../core/clock.ts';
import { T0, auditEvent } from '../../store/conformance/fixtures.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import { verifyAuditLog } from './verify.ts';

describe('verifyAuditLog', () => {
  let dir: string;
  let store: Store;
  let sql: (q: string) => void;
  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-verify-'));
    const file = path.join(dir, 'db');
    store = await openStore({ kind: 'sqlite', path: file }, new ManualClock(T0));
    await store.audit.appendMany(Array.from({ length: 10 }, (_, i) => auditEvent(i)));
    sql = (q) => {
      const db = new DatabaseSync(file);
      try {
        db.exec(q);
      } finally {
        db.close();
      }
    };
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ok on an intact log, checkpoints included (seq 0 is the empty log)', async () => {
    const at5 = (await store.audit.list({ afterSeq: 4 }, 1))[0]?.hash as string;
    const v = await verifyAuditLog(store.audit, [
      { seq: 0, hash: GENESIS_HASH },
      { seq: 5, hash: at5 },
    ]);
    assert.deepEqual(
      { ok: v.ok, count: v.count, head: v.head.seq, cps: v.checkpointsVerified },
      { ok: true, count: 10, head: 10, cps: 2 },
    );
  });

  it('names a gap in the middle', async () => {
    sql('delete from audit where seq between 4 and 6');
    const v = await verifyAuditLog(store.audit);
    assert.deepEqual(
      { ok: v.ok, badSeq: v.badSeq, reason: v.reason, from: v.missingFrom, to: v.missingTo },
      { ok: false, badSeq: 7, reason: 'records 4..6 are missing', from: 4, to: 6 },
    );
  });

  it('names a single missing last record', async () => {
    sql('delete from audit where seq = 10');
    const v = await verifyAuditLog(store.audit);
    assert.equal(v.reason, 'truncated: record 10 is missing (the recorded head is seq 10)');
    assert.deepEqual([v.missingFrom, v.missingTo], [10, 10]);
  });

  it('finds a head rewritten backwards, and a head whose hash is not the last record', async () => {
    sql(`update audit_head set seq = 8, hash = (select hash from audit where seq = 8)`);
    const back = await verifyAuditLog(store.audit);
    assert.equal(
      back.reason,
      'record 9 lies beyond the recorded head (seq 8): the head was rewritten',
    );
    sql(`update audit_head set seq = 10, hash = '${'f'.repeat(64)}'`);
    const other = await verifyAuditLog(store.audit);
    assert.equal(other.reason, "the recorded head's hash differs from record 10's");
  });

  it('refuses bad checkpoint input', async () => {
    await assert.rejects(verifyAuditLog(store.audit, [{ seq: 2, hash: 'x' }]), {
      name: 'InvalidArgumentError',
    });
    const h = 'a'.repeat(64);
    await assert.rejects(
      verifyAuditLog(store.audit, [
        { seq: 3, hash: h },
        { seq: 2, hash: h },
      ]),
      { message: 'checkpoints: must be in ascending seq order' },
    );
  });
});
