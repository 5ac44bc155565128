import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as jose from 'jose';
import { MemoryKeyManager } from '../keys/memory-key-manager.ts';
import { signJwt } from './sign-claims.ts';

describe('signJwt (arbitrary claims, typ header)', () => {
  for (const type of ['ec-p256', 'ec-p384', 'rsa-2048'] as const) {
    it(`signs a token jose verifies (${type})`, async () => {
      const key = await new MemoryKeyManager().generate('jwt', type);
      const claims = {
        iss: 'https://i.example',
        sub: 's',
        aud: 'a',
        iat: 100,
        exp: 200,
        scope: 'x y',
      };
      const token = await signJwt({ key, kid: 'k1', typ: 'at+jwt', claims });
      const header = jose.decodeProtectedHeader(token);
      assert.equal(header.typ, 'at+jwt');
      assert.equal(header.kid, 'k1');
      const { payload } = await jose.jwtVerify(token, key.publicKey, {
        currentDate: new Date(150_000),
        typ: 'at+jwt',
      });
      assert.deepEqual(payload, claims);
    });
  }
  it('refuses a missing kid/typ and exp <= iat', async () => {
    const key = await new MemoryKeyManager().generate('jwt', 'ec-p256');
    const claims = { iat: 100, exp: 200 };
    await assert.rejects(signJwt({ key, kid: '', typ: 'at+jwt', claims }), /kid/);
    await assert.rejects(signJwt({ key, kid: 'k', typ: '', claims }), /typ/);
    await assert.rejects(signJwt({ key, kid: 'k', typ: 'JWT', claims: { iat: 2, exp: 2 } }), /exp/);
  });
});
