// Conformance: Store.transaction, ping/close and error mapping that is not aggregate-specific.
import assert from 'node:assert/strict';
import { UnavailableError } from '../../core/errors.ts';
import { type Cases, auditEvent, entryId, makeEntry, makeNode } from './fixtures.ts';

export const transactionCases: Cases = {
  'commits everything fn did': async (s) => {
    const result = await s.transaction(async (tx) => {
      await tx.entries.create(makeEntry(1));
      await tx.nodes.upsert(makeNode(1));
      await tx.audit.append(auditEvent(1));
      return 'done';
    });
    assert.equal(result, 'done');
    assert.equal(await s.entries.count(), 1);
    assert.equal((await s.changes.since(0, 10)).length, 2);
    assert.equal((await s.audit.tail(1))[0]?.seq, 1);
  },

  'rolls back everything, events included, and rethrows the error as is': async (s) => {
    const boom = new Error('boom');
    await assert.rejects(
      s.transaction(async (tx) => {
        await tx.entries.create(makeEntry(1));
        await tx.audit.append(auditEvent(1));
        throw boom;
      }),
      (e) => e === boom,
    );
    assert.equal(await s.entries.get(entryId(1)), null);
    assert.deepEqual(await s.changes.since(0, 10), []);
    assert.equal(await s.changes.latestId(), 0);
    assert.deepEqual(await s.audit.tail(10), []);
    // The chain continues from genesis: the rolled-back append left no trace in the head.
    assert.equal((await s.audit.append(auditEvent(2))).seq, 1);
  },

  'maps errors raised inside a transaction': async (s) => {
    await s.entries.create(makeEntry(1));
    await assert.rejects(
      s.transaction((tx) => tx.entries.create(makeEntry(1))),
      { name: 'AlreadyExistsError' },
    );
    assert.equal((await s.changes.since(0, 10)).length, 1);
  },

  'ping() succeeds while open; after close() calls fail with UnavailableError': async (s) => {
    await s.ping();
    await s.close();
    await assert.rejects(s.ping(), UnavailableError);
    await assert.rejects(s.entries.get('x'), { name: 'UnavailableError' });
  },
};
