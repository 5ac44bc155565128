// Conformance: KeyJournalStore — upserts by (server, key ref), lists one server's records only,
// takes part in transactions.
import assert from 'node:assert/strict';
import { type Cases, T0 } from './fixtures.ts';

export const keyJournalCases: Cases = {
  'records, moves and forgets keys per server': async (s) => {
    await s.keyJournal.set('server-1', 'x509-b', 'pending', T0);
    await s.keyJournal.set('server-1', 'x509-a', 'pending', T0 + 1);
    await s.keyJournal.set('server-2', 'x509-a', 'committed', T0 + 2);
    await s.keyJournal.set('server-1', 'x509-a', 'committed', T0 + 3);
    assert.deepEqual(await s.keyJournal.list('server-1'), [
      { serverId: 'server-1', keyRef: 'x509-a', state: 'committed', updatedAt: T0 + 3 },
      { serverId: 'server-1', keyRef: 'x509-b', state: 'pending', updatedAt: T0 },
    ]);
    await s.keyJournal.set('server-1', 'x509-a', 'retired', T0 + 4);
    await s.keyJournal.delete('server-1', 'x509-b');
    await s.keyJournal.delete('server-1', 'x509-b');
    assert.deepEqual(await s.keyJournal.list('server-1'), [
      { serverId: 'server-1', keyRef: 'x509-a', state: 'retired', updatedAt: T0 + 4 },
    ]);
    assert.deepEqual(await s.keyJournal.list('server-2'), [
      { serverId: 'server-2', keyRef: 'x509-a', state: 'committed', updatedAt: T0 + 2 },
    ]);
    assert.deepEqual(await s.keyJournal.list('server-3'), []);
  },

  'a change inside a rolled-back transaction is not kept': async (s) => {
    await s.keyJournal.set('server-1', 'jwt-a', 'pending', T0);
    await assert.rejects(
      s.transaction(async (tx) => {
        await tx.keyJournal.set('server-1', 'jwt-a', 'committed', T0 + 1);
        throw new Error('abort');
      }),
      /abort/,
    );
    assert.equal((await s.keyJournal.list('server-1'))[0]?.state, 'pending');
  },
};
