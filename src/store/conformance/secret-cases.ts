// Conformance: SecretStore — versions and the current pointer move together, stale writers and
// retired KEKs are refused, re-wrapping is conditional, every mutation announces `access`.
import assert from 'node:assert/strict';
import type { KekRecord, SecretVersionRecord, Store } from '../types.ts';
import { type Cases, T0 } from './fixtures.ts';

const b = (...xs: number[]) => new Uint8Array(xs);

const kek = (id: string, state: KekRecord['state'] = 'active'): KekRecord => ({
  id,
  state,
  owner: 'server-1',
  checkValue: `check-${id}`,
  createdAt: T0,
  updatedAt: T0,
});

const ver = (name: string, version: number, kekId = 'k1'): SecretVersionRecord => ({
  name,
  version,
  ciphertext: b(1, 2, version),
  nonce: b(3, version),
  wrappedKey: b(4, version),
  kekId,
  size: 10 + version,
  createdAt: T0 + version,
});

async function withKek(s: Store): Promise<void> {
  await s.secrets.addKek(kek('k1'));
}

export const secretCases: Cases = {
  'put creates, further puts add versions; current, versions, list': async (s) => {
    await withKek(s);
    assert.equal(await s.secrets.get('db'), null);
    assert.equal(await s.secrets.current('db'), null);
    assert.deepEqual(await s.secrets.putVersion(ver('db', 1), 10), {
      name: 'db',
      currentVersion: 1,
      createdAt: T0 + 1,
      updatedAt: T0 + 1,
    });
    await s.secrets.putVersion(ver('db', 2), 10);
    await s.secrets.putVersion(ver('api', 1), 10);
    assert.deepEqual(await s.secrets.current('db'), ver('db', 2));
    assert.deepEqual(await s.secrets.versions('db'), [ver('db', 1), ver('db', 2)]);
    assert.deepEqual(
      (await s.secrets.list(100)).map((r) => [r.name, r.currentVersion]),
      [
        ['api', 1],
        ['db', 2],
      ],
    );
    assert.deepEqual(await s.secrets.get('db'), {
      name: 'db',
      currentVersion: 2,
      createdAt: T0 + 1,
      updatedAt: T0 + 2,
    });
  },

  'a stale writer is refused and changes nothing': async (s) => {
    await withKek(s);
    await s.secrets.putVersion(ver('db', 1), 10);
    const conflict = { name: 'ConflictError', message: /^conflict: / };
    await assert.rejects(s.secrets.putVersion(ver('db', 1), 10), conflict);
    await assert.rejects(s.secrets.putVersion(ver('db', 3), 10), conflict);
    await assert.rejects(s.secrets.putVersion(ver('new', 2), 10), conflict);
    assert.deepEqual(await s.secrets.versions('db'), [ver('db', 1)]);
    assert.equal(await s.secrets.get('new'), null);
  },

  'only the newest `keep` versions stay': async (s) => {
    await withKek(s);
    for (let v = 1; v <= 5; v++) await s.secrets.putVersion(ver('db', v), 2);
    assert.deepEqual(
      (await s.secrets.versions('db')).map((v) => v.version),
      [4, 5],
    );
  },

  'a version is only added under the active KEK': async (s) => {
    await withKek(s);
    await s.secrets.addKek(kek('k2', 'pending'));
    await assert.rejects(s.secrets.putVersion(ver('db', 1, 'k2'), 10), {
      message: 'conflict: KEK k2 is not active',
    });
    await assert.rejects(s.secrets.putVersion(ver('db', 1, 'nope'), 10), {
      message: 'conflict: KEK nope is not active',
    });
    assert.equal(await s.secrets.get('db'), null);
  },

  'delete removes the secret and its versions': async (s) => {
    await withKek(s);
    await s.secrets.putVersion(ver('db', 1), 10);
    await s.secrets.putVersion(ver('db', 2), 10);
    assert.equal((await s.secrets.delete('db')).currentVersion, 2);
    assert.equal(await s.secrets.get('db'), null);
    assert.deepEqual(await s.secrets.versions('db'), []);
    assert.equal(await s.secrets.countWrappedBy('k1'), 0);
    await assert.rejects(s.secrets.delete('db'), {
      name: 'NotFoundError',
      message: 'secret "db" not found',
    });
    // The name can be used again from version 1.
    await s.secrets.putVersion(ver('db', 1), 10);
  },

  'KEK records: one active at a time, states move, rewrap is conditional': async (s) => {
    await withKek(s);
    await assert.rejects(s.secrets.addKek(kek('k1', 'pending')), { name: 'AlreadyExistsError' });
    await assert.rejects(s.secrets.addKek(kek('k9', 'active')), { name: 'AlreadyExistsError' });
    await s.secrets.addKek(kek('k2', 'pending'));
    await s.secrets.putVersion(ver('a', 1), 10);
    await s.secrets.putVersion(ver('b', 1), 10);
    assert.equal(await s.secrets.countWrappedBy('k1'), 2);
    assert.deepEqual(
      (await s.secrets.wrappedBy('k1', 1)).map((v) => v.name),
      ['a'],
    );
    assert.equal(await s.secrets.rewrap('a', 1, 'k1', 'k2', b(9)), true);
    assert.equal(await s.secrets.rewrap('a', 1, 'k1', 'k2', b(8)), false);
    const a = await s.secrets.current('a');
    assert.equal(a?.kekId, 'k2');
    assert.deepEqual(a?.wrappedKey, b(9));
    await assert.rejects(s.secrets.deleteKek('k1'), { name: 'FailedPreconditionError' });
    await s.secrets.rewrap('b', 1, 'k1', 'k2', b(7));
    await s.transaction(async (tx) => {
      await tx.secrets.updateKek('k1', 'retired', 'check-k1', T0 + 5);
      await tx.secrets.updateKek('k2', 'active', 'check-k2', T0 + 5);
    });
    assert.deepEqual(
      (await s.secrets.listKeks()).map((k) => [k.id, k.state]),
      [
        ['k1', 'retired'],
        ['k2', 'active'],
      ],
    );
    await s.secrets.deleteKek('k1');
    assert.deepEqual(
      (await s.secrets.listKeks()).map((k) => k.id),
      ['k2'],
    );
    await assert.rejects(s.secrets.updateKek('k1', 'active', '', T0), { name: 'NotFoundError' });
  },

  'mutations announce the access topic after commit; rollbacks do not': async (s) => {
    let seen = 0;
    s.notifications.subscribe('access', () => seen++);
    await withKek(s);
    await s.secrets.putVersion(ver('db', 1), 10);
    await s.secrets.delete('db');
    assert.equal(seen, 3);
    await assert.rejects(
      s.transaction(async (tx) => {
        await tx.secrets.putVersion(ver('db', 1), 10);
        throw new Error('roll back');
      }),
    );
    assert.equal(seen, 3);
    assert.equal(await s.secrets.get('db'), null);
  },
};
