import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createCredentialProvider } from '../catalog.ts';
import { MemorySecrets, deps, record, request } from '../testing/fakes.ts';

function provider(config: Record<string, unknown>, secrets: MemorySecrets) {
  return createCredentialProvider(record('static-secret', config, 'legacy'), deps({ secrets }));
}

describe('static-secret', () => {
  it('releases a value as a token that does not expire', async () => {
    const s = new MemorySecrets().set('api-key', 'sk_live_123');
    const c = await provider({ secret: 'api-key' }, s).release(request());
    assert.deepEqual(c, {
      value: { kind: 'token', token: 'sk_live_123' },
      expiresAt: null,
      leaseId: '',
    });
  });

  it('reads the current version each time (rotation is picked up)', async () => {
    const s = new MemorySecrets().set('api-key', 'v1');
    const p = provider({ secret: 'api-key' }, s);
    assert.equal((await p.release(request())).value.kind, 'token');
    s.set('api-key', 'v2');
    assert.deepEqual((await p.release(request())).value, { kind: 'token', token: 'v2' });
  });

  it('username-password from a JSON secret', async () => {
    const s = new MemorySecrets().set('db', JSON.stringify({ username: 'app', password: 'p@ss' }));
    const c = await provider({ secret: 'db', format: 'username-password' }, s).release(request());
    assert.deepEqual(c.value, { kind: 'password', username: 'app', password: 'p@ss' });
  });

  it('username-password with the username in config and the password alone in the secret', async () => {
    const s = new MemorySecrets().set('db', '{"not": "json pair"}');
    const c = await provider(
      { secret: 'db', format: 'username-password', username: 'app' },
      s,
    ).release(request());
    assert.deepEqual(c.value, {
      kind: 'password',
      username: 'app',
      password: '{"not": "json pair"}',
    });
  });

  it('a secret of the wrong shape or missing is a precondition failure that shows no value', async () => {
    const s = new MemorySecrets().set('db', 'hunter2-not-json');
    const p = provider({ secret: 'db', format: 'username-password' }, s);
    await assert.rejects(p.release(request()), (e: Error) => {
      assert.equal(e.name, 'FailedPreconditionError');
      assert.match(e.message, /credential provider "legacy": secret "db" must be JSON/);
      assert.doesNotMatch(e.message, /hunter2/);
      return true;
    });
    s.delete('db');
    await assert.rejects(p.release(request()), {
      name: 'FailedPreconditionError',
      message: 'credential provider "legacy": secret "db" does not exist',
    });
    s.set('db', new Uint8Array([0xff, 0xfe]));
    await assert.rejects(provider({ secret: 'db' }, s).release(request()), {
      name: 'FailedPreconditionError',
      message: 'credential provider "legacy": secret "db" is not UTF-8 text',
    });
  });
});
