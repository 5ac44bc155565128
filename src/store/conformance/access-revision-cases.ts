// Conformance: AccessRevisionStore — starts positive, bump() increments and announces `access`
// after commit, and a rolled-back transaction leaves it as it was.
import assert from 'node:assert/strict';
import type { Cases } from './fixtures.ts';

export const accessRevisionCases: Cases = {
  'starts positive; bump() increments it and announces "access" after commit': async (s) => {
    const first = await s.accessRevision.current();
    assert.ok(first > 0);
    const seen: string[] = [];
    const off = s.notifications.subscribe('access', (topic, source) => {
      seen.push(`${topic}:${source}`);
    });
    assert.equal(await s.accessRevision.bump(), first + 1);
    assert.equal(await s.accessRevision.current(), first + 1);
    assert.deepEqual(seen, ['access:local']);
    off();
  },

  'a bump inside a rolled-back transaction is undone and not announced': async (s) => {
    const before = await s.accessRevision.current();
    const seen: string[] = [];
    const off = s.notifications.subscribe('access', (t) => seen.push(t));
    await assert.rejects(
      s.transaction(async (tx) => {
        await tx.accessRevision.bump();
        throw new Error('roll back');
      }),
      /roll back/,
    );
    assert.equal(await s.accessRevision.current(), before);
    assert.deepEqual(seen, []);
    off();
  },

  'several bumps in one transaction count once (one announcement per commit)': async (s) => {
    const before = await s.accessRevision.current();
    const after = await s.transaction(async (tx) => {
      await tx.accessRevision.bump();
      return tx.accessRevision.bump();
    });
    assert.equal(after, before + 1);
    assert.equal(await s.accessRevision.current(), before + 1);
  },
};
