import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import * as jose from 'jose';
import { OAuthError } from './errors.ts';
import { DPOP_WINDOW_SECONDS, dpopReplayKey, jwkThumbprint, verifyDpopProof } from './dpop.ts';

const ENDPOINT = 'https://sts.example.org/token';
const NOW = 1_800_000_000_000;
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });

async function proof(
  key: { privateKey: KeyObject; publicKey: KeyObject },
  alg: string,
  claims: Record<string, unknown> = {},
): Promise<string> {
  return new jose.SignJWT({ jti: 'j-1', htm: 'POST', htu: ENDPOINT, iat: NOW / 1000, ...claims })
    .setProtectedHeader({ alg, typ: 'dpop+jwt', jwk: await jose.exportJWK(key.publicKey) })
    .sign(key.privateKey);
}
const refused = (p: string, reason: RegExp, endpoint = ENDPOINT, now = NOW) =>
  assert.throws(
    () => verifyDpopProof([p], endpoint, now),
    (e: unknown) => {
      assert.ok(e instanceof OAuthError);
      assert.equal(e.code, 'invalid_dpop_proof');
      assert.match(e.reason, reason);
      return true;
    },
  );

describe('verifyDpopProof', () => {
  it('accepts EC and RSA (RS and PS) proofs; jkt is the RFC 7638 thumbprint', async () => {
    for (const [key, alg] of [
      [ec, 'ES256'],
      [rsa, 'RS256'],
      [rsa, 'PS256'],
    ] as const) {
      const v = verifyDpopProof([await proof(key, alg)], ENDPOINT, NOW);
      assert.equal(v.jkt, await jose.calculateJwkThumbprint(await jose.exportJWK(key.publicKey)));
      assert.equal(v.jti, 'j-1');
      assert.equal(v.expiresAt, NOW + 2 * DPOP_WINDOW_SECONDS * 1000);
    }
  });

  it('compares htu after URL normalization, without query and fragment', async () => {
    for (const htu of [
      'https://STS.example.org/token',
      'https://sts.example.org:443/token',
      'https://sts.example.org/token?a=b',
      'https://sts.example.org/token#x',
    ])
      verifyDpopProof([await proof(ec, 'ES256', { htu })], ENDPOINT, NOW);
    for (const htu of [
      'http://sts.example.org/token',
      'https://sts.example.org:8443/token',
      'https://sts.example.org/token/',
      'https://user@sts.example.org/token',
      'not a url',
    ])
      refused(await proof(ec, 'ES256', { htu }), /htu/);
  });

  it('iat window is inclusive of ±60 s and no more', async () => {
    verifyDpopProof([await proof(ec, 'ES256', { iat: NOW / 1000 - 60 })], ENDPOINT, NOW);
    verifyDpopProof([await proof(ec, 'ES256', { iat: NOW / 1000 + 60 })], ENDPOINT, NOW);
    refused(await proof(ec, 'ES256', { iat: NOW / 1000 - 61 }), /iat/);
    refused(await proof(ec, 'ES256', { iat: NOW / 1000 + 61 }), /iat/);
    refused(await proof(ec, 'ES256', { iat: String(NOW / 1000) }), /iat/);
  });

  it('bounds jti and the proof size; refuses several headers', async () => {
    refused(await proof(ec, 'ES256', { jti: 'x'.repeat(257) }), /jti/);
    refused(await proof(ec, 'ES256', { jti: 7 }), /jti/);
    refused('a'.repeat(9000), /larger than/);
    const p = await proof(ec, 'ES256');
    assert.throws(() => verifyDpopProof([p, p], ENDPOINT, NOW), /exactly one/);
    assert.throws(() => verifyDpopProof([], ENDPOINT, NOW), /exactly one/);
  });

  it('refuses an RSA key under 2048 bits and an RSA jwk with an EC alg', async () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const input = `${b64({ alg: 'RS256', typ: 'dpop+jwt', jwk: small.publicKey.export({ format: 'jwk' }) })}.${b64({ jti: 'j', htm: 'POST', htu: ENDPOINT, iat: NOW / 1000 })}`;
    const sig = sign('sha256', Buffer.from(input), small.privateKey).toString('base64url');
    refused(`${input}.${sig}`, /does not fit/);
    const p = await proof(rsa, 'RS256');
    const [h, c, s] = p.split('.') as [string, string, string];
    const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as object;
    const relabelled = Buffer.from(JSON.stringify({ ...header, alg: 'ES256' })).toString(
      'base64url',
    );
    refused(`${relabelled}.${c}.${s}`, /does not fit/);
  });

  it('replay keys are per key and endpoint, and fixed length', () => {
    const a = { jkt: 'k1', jti: 'j', expiresAt: 0 };
    const k = dpopReplayKey(ENDPOINT, a);
    assert.equal(k.length, 43);
    assert.notEqual(k, dpopReplayKey(ENDPOINT, { ...a, jkt: 'k2' }));
    assert.notEqual(k, dpopReplayKey('https://other/token', a));
    assert.equal(k, dpopReplayKey(ENDPOINT, { ...a, expiresAt: 5 }));
  });

  it('jwkThumbprint matches RFC 7638 §3.1', () => {
    const n =
      '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw';
    assert.equal(
      jwkThumbprint({ kty: 'RSA', n, e: 'AQAB', alg: 'RS256', kid: '2011-04-29' }),
      'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs',
    );
  });
});
