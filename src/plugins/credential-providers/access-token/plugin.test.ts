import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jwtVerify } from 'jose';
import { createCredentialProvider } from '../catalog.ts';
import { deps, joseMinting, record, request, testClient } from '../testing/fakes.ts';

describe('access-token', () => {
  it('mints an RFC 9068 access token with subject, audience, scopes and ttl', async () => {
    const minting = await joseMinting(() => Date.now());
    const p = createCredentialProvider(
      record('access-token', {
        audience: 'https://api.example',
        scopes: ['orders:read', 'x'],
        ttl: '90s',
      }),
      deps({ minting }),
    );
    const c = await p.release(request());
    const token = c.value.kind === 'token' ? c.value.token : '';
    const { payload, protectedHeader } = await jwtVerify(token, minting.publicKey, {
      audience: 'https://api.example',
      issuer: minting.issuer,
      typ: 'at+jwt',
    });
    assert.equal(protectedHeader.typ, 'at+jwt');
    assert.equal(payload.sub, testClient.spiffeId);
    assert.equal(payload.scope, 'orders:read x');
    assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 90);
    assert.equal(c.expiresAt, (payload.exp ?? 0) * 1000);
  });
});
