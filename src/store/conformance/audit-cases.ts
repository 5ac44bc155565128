// Conformance: AuditStore and its hash chain.
import assert from 'node:assert/strict';
import { GENESIS_HASH, auditHash, verifyChain } from '../../core/audit.ts';
import { type Cases, auditEvent } from './fixtures.ts';

export const auditCases: Cases = {
  'appends chained records that read back intact': async (s) => {
    const first = await s.audit.append(auditEvent(1));
    assert.equal(first.seq, 1);
    assert.equal(first.prevHash, GENESIS_HASH);
    assert.equal(first.hash, auditHash(1, GENESIS_HASH, auditEvent(1)));
    const second = await s.audit.append(auditEvent(2, { outcome: 'denied', details: {} }));
    assert.equal(second.prevHash, first.hash);
    const all = await s.audit.list({}, 100);
    assert.deepEqual(all, [first, second]);
    assert.deepEqual(verifyChain(all).ok, true);
  },

  'filters list() by afterSeq, action and actor; tail() is newest first': async (s) => {
    for (let i = 1; i <= 6; i++) {
      await s.audit.append(
        auditEvent(i, {
          action: i % 2 === 0 ? 'entry.delete' : 'entry.create',
          actor: i <= 3 ? 'local-admin' : 'spiffe://example.org/admin',
        }),
      );
    }
    const seqs = (rs: { seq: number }[]) => rs.map((r) => r.seq);
    assert.deepEqual(seqs(await s.audit.list({ afterSeq: 4 }, 100)), [5, 6]);
    assert.deepEqual(seqs(await s.audit.list({ action: 'entry.delete' }, 100)), [2, 4, 6]);
    assert.deepEqual(
      seqs(await s.audit.list({ actor: 'local-admin', action: 'entry.create' }, 100)),
      [1, 3],
    );
    assert.deepEqual(seqs(await s.audit.list({}, 2)), [1, 2]);
    assert.deepEqual(seqs(await s.audit.tail(4)), [6, 5, 4, 3]);
    await assert.rejects(s.audit.tail(0), { name: 'InvalidArgumentError' });
  },

  'filters list() by correlationId, in seq order': async (s) => {
    for (let i = 1; i <= 5; i++) {
      await s.audit.append(auditEvent(i, { correlationId: i % 2 === 0 ? 'chain-a' : 'chain-b' }));
    }
    const seqs = (rs: { seq: number }[]) => rs.map((r) => r.seq);
    assert.deepEqual(seqs(await s.audit.list({ correlationId: 'chain-a' }, 100)), [2, 4]);
    assert.deepEqual(
      seqs(await s.audit.list({ correlationId: 'chain-b', afterSeq: 1 }, 100)),
      [3, 5],
    );
    assert.deepEqual(await s.audit.list({ correlationId: 'none' }, 100), []);
  },

  '50 concurrent appends still form one unbroken chain': async (s) => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => s.audit.append(auditEvent(i))),
    );
    assert.deepEqual(
      results.map((r) => r.seq).sort((a, b) => a - b),
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    const check = verifyChain(await s.audit.list({}, 1000));
    assert.deepEqual({ ok: check.ok, count: check.ok ? check.count : -1 }, { ok: true, count: 50 });
  },

  'appendMany chains a group in order, after what came before, in one transaction': async (s) => {
    await s.audit.append(auditEvent(0));
    const group = await s.audit.appendMany(
      Array.from({ length: 1200 }, (_, i) => auditEvent(i + 1)),
    );
    assert.deepEqual(
      group.map((r) => r.seq),
      Array.from({ length: 1200 }, (_, i) => i + 2),
    );
    assert.deepEqual(await s.audit.appendMany([]), []);
    const all = await s.audit.list({}, 2000);
    const check = verifyChain(all);
    assert.deepEqual(
      { ok: check.ok, count: check.ok ? check.count : -1 },
      { ok: true, count: 1201 },
    );
    await assert.rejects(
      s.transaction(async (tx) => {
        await tx.audit.appendMany([auditEvent(9000), auditEvent(9001)]);
        throw new Error('roll back');
      }),
    );
    assert.equal((await s.audit.tail(1))[0]?.seq, 1201);
  },

  'head() names the last record appended, genesis before any': async (s) => {
    assert.deepEqual(await s.audit.head(), { seq: 0, hash: GENESIS_HASH });
    await s.audit.append(auditEvent(1));
    const [, last] = await s.audit.appendMany([auditEvent(2), auditEvent(3)]);
    assert.deepEqual(await s.audit.head(), { seq: 3, hash: last?.hash });
  },
};
