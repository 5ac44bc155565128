import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jwtVerify } from 'jose';
import { createCredentialProvider } from '../catalog.ts';
import { deps, joseMinting, record, request, testClient } from '../testing/fakes.ts';

describe('jwt-svid', () => {
  it('mints a JWT-SVID of the client for the configured audience and ttl', async () => {
    const minting = await joseMinting(() => Date.now());
    const p = createCredentialProvider(
      record('jwt-svid', { audience: ['https://orders.internal', 'orders'], ttl: '2m' }),
      deps({ minting }),
    );
    const before = Date.now();
    const c = await p.release(request());
    assert.equal(c.value.kind, 'token');
    assert.equal(c.leaseId, '');
    const { payload } = await jwtVerify(
      c.value.kind === 'token' ? c.value.token : '',
      minting.publicKey,
      {
        audience: 'orders',
      },
    );
    assert.equal(payload.sub, testClient.spiffeId);
    assert.deepEqual(payload.aud, ['https://orders.internal', 'orders']);
    assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 120);
    assert.ok(c.expiresAt !== null && c.expiresAt >= Math.floor(before / 1000) * 1000 + 120_000);
  });
});
