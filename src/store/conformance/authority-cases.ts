// Conformance: AuthorityStore, byte arrays included.
import assert from 'node:assert/strict';
import { NotFoundError } from '../../core/errors.ts';
import { ALL_BYTES, type Cases, T0, makeAuthority } from './fixtures.ts';

export const authorityCases: Cases = {
  'inserts and gets authorities; bytes round-trip exactly': async (s) => {
    const a = makeAuthority('aa');
    await s.authorities.insert(a);
    const got = await s.authorities.get('x509', 'aa');
    assert.deepEqual(got, a);
    assert.equal(Object.getPrototypeOf(got?.publicKeyDer), Uint8Array.prototype);
    assert.deepEqual(got?.publicKeyDer, ALL_BYTES);
    assert.equal(await s.authorities.get('jwt', 'aa'), null);
    await assert.rejects(s.authorities.insert(a), {
      name: 'AlreadyExistsError',
      message: 'an authority with this kind and id already exists',
    });
    await s.authorities.insert(makeAuthority('aa', { kind: 'jwt', certChainDer: [] }));
    assert.deepEqual((await s.authorities.get('jwt', 'aa'))?.certChainDer, []);
  },

  'lists by server and kind, oldest first': async (s) => {
    await s.authorities.insert(makeAuthority('b', { createdAt: T0 + 2 }));
    await s.authorities.insert(makeAuthority('a', { createdAt: T0 + 1, serverId: 'server-2' }));
    await s.authorities.insert(makeAuthority('c', { createdAt: T0 + 3, kind: 'jwt' }));
    const ids = (xs: { id: string }[]) => xs.map((x) => x.id);
    assert.deepEqual(ids(await s.authorities.list({})), ['a', 'b', 'c']);
    assert.deepEqual(ids(await s.authorities.list({ serverId: 'server-1' })), ['b', 'c']);
    assert.deepEqual(ids(await s.authorities.list({ kind: 'x509' })), ['a', 'b']);
    assert.deepEqual(ids(await s.authorities.list({ kind: 'jwt', serverId: 'server-2' })), []);
  },

  'sets status and taint, deletes; NotFoundError when missing': async (s) => {
    await s.authorities.insert(makeAuthority('a'));
    await s.authorities.setStatus('x509', 'a', 'active');
    await s.authorities.setTainted('x509', 'a');
    assert.deepEqual(
      await s.authorities.get('x509', 'a'),
      makeAuthority('a', { status: 'active', tainted: true }),
    );
    await assert.rejects(s.authorities.setStatus('jwt', 'a', 'old'), {
      name: 'NotFoundError',
      message: 'jwt authority "a" not found',
    });
    await assert.rejects(s.authorities.setTainted('jwt', 'a'), NotFoundError);
    await s.authorities.delete('x509', 'a');
    assert.equal(await s.authorities.get('x509', 'a'), null);
    await assert.rejects(s.authorities.delete('x509', 'a'), NotFoundError);
  },
};
