import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import { SignJWT, jwtVerify } from 'jose';
import type { KeyType } from '../../core/authority.ts';
import { MemoryKeyManager } from '../keys/memory-key-manager.ts';
import { jwtAlgFor } from './alg.ts';
import { signJwtSvid, signJwtSvidSync } from './sign.ts';
import { verifyJwtSvid, type VerifyJwtSvidOptions } from './verify.ts';

const NOW = Date.UTC(2030, 0, 1);
const iat = NOW / 1000;
const claims = { sub: 'spiffe://example.org/w', aud: ['svc'], exp: iat + 300, iat };

async function setup(type: KeyType = 'ec-p256') {
  const key = await new MemoryKeyManager().generate('jwt', type);
  const keys = new Map<string, KeyObject>([['example.org/k1', key.publicKey]]);
  const opts: VerifyJwtSvidOptions = {
    resolveKey: (td, kid) => keys.get(`${td}/${kid}`) ?? null,
    audience: 'svc',
    now: NOW,
  };
  return { key, keys, opts };
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** Signs arbitrary header/payload with a raw private key (for forged tokens). */
function rawToken(header: object, payload: object, priv: KeyObject, dsa = true): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const sig = nodeSign(
    'sha256',
    Buffer.from(input),
    dsa ? { key: priv, dsaEncoding: 'ieee-p1363' } : priv,
  );
  return `${input}.${sig.toString('base64url')}`;
}

describe('JWT-SVID signing', () => {
  it('maps key types to algorithms', () => {
    assert.equal(jwtAlgFor('ec-p256'), 'ES256');
    assert.equal(jwtAlgFor('ec-p384'), 'ES384');
    assert.equal(jwtAlgFor('rsa-2048'), 'RS256');
    assert.equal(jwtAlgFor('rsa-4096'), 'RS256');
  });

  for (const type of ['ec-p256', 'ec-p384', 'rsa-2048'] as KeyType[]) {
    it(`${type}: header {alg,kid,typ}, verifies with jose and with verifyJwtSvid`, async () => {
      const { key, opts } = await setup(type);
      const token = await signJwtSvid({
        key,
        kid: 'k1',
        claims: { ...claims, iss: 'https://issuer' },
      });
      const [h] = token.split('.');
      assert.deepEqual(JSON.parse(Buffer.from(h!, 'base64url').toString()), {
        alg: jwtAlgFor(type),
        kid: 'k1',
        typ: 'JWT',
      });
      const j = await jwtVerify(token, key.publicKey, {
        audience: 'svc',
        currentDate: new Date(NOW),
      });
      assert.equal(j.payload.sub, claims.sub);
      const v = await verifyJwtSvid(token, opts);
      assert.equal(v.spiffeId, claims.sub);
      assert.deepEqual(v.claims.aud, ['svc']);
      assert.equal(v.claims.iss, 'https://issuer');
      assert.equal(signJwtSvidSync({ key, kid: 'k1', claims }).split('.').length, 3);
    });
  }

  it('rejects bad claims at signing time', async () => {
    const { key } = await setup();
    assert.throws(() => signJwtSvidSync({ key, kid: 'k1', claims: { ...claims, aud: [] } }), /aud/);
    assert.throws(
      () => signJwtSvidSync({ key, kid: 'k1', claims: { ...claims, sub: 'nope' } }),
      /SPIFFE ID/,
    );
    assert.throws(() => signJwtSvidSync({ key, kid: '', claims }), /kid/);
    assert.throws(() => signJwtSvidSync({ key, kid: 'k', claims: { ...claims, exp: iat } }), /exp/);
    const { signSync: _sync, ...kms } = key;
    assert.throws(() => signJwtSvidSync({ key: kms, kid: 'k', claims }), /synchronously/);
    assert.equal((await signJwtSvid({ key: kms, kid: 'k1', claims })).split('.').length, 3);
  });
});

describe('JWT-SVID validation', () => {
  it('accepts PS256 tokens from RSA keys (signed by jose)', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const token = await new SignJWT({ aud: ['svc'] })
      .setProtectedHeader({ alg: 'PS256', kid: 'k1', typ: 'JWT' })
      .setSubject(claims.sub)
      .setExpirationTime(claims.exp)
      .sign(privateKey);
    const v = await verifyJwtSvid(token, {
      resolveKey: () => publicKey,
      audience: 'svc',
      now: NOW,
    });
    assert.equal(v.spiffeId, claims.sub);
  });

  it('applies the time rules with leeway', async () => {
    const { key, opts } = await setup();
    const token = signJwtSvidSync({ key, kid: 'k1', claims });
    await verifyJwtSvid(token, { ...opts, now: NOW + 310_000 });
    await assert.rejects(
      verifyJwtSvid(token, { ...opts, now: NOW + 331_000 }),
      /token has expired/,
    );
    await assert.rejects(
      verifyJwtSvid(token, { ...opts, now: NOW + 301_000, leewaySeconds: 0 }),
      /token has expired/,
    );
    await assert.rejects(
      verifyJwtSvid(token, { ...opts, now: NOW - 60_000 }),
      /issued in the future/,
    );
    const priv = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const resolveKey = () => priv.publicKey;
    const nbf = rawToken(
      { alg: 'ES256', kid: 'k1' },
      { ...claims, nbf: iat + 100 },
      priv.privateKey,
    );
    await assert.rejects(verifyJwtSvid(nbf, { ...opts, resolveKey }), /not yet valid/);
    const noExp = rawToken(
      { alg: 'ES256', kid: 'k1' },
      { sub: claims.sub, aud: 'svc' },
      priv.privateKey,
    );
    await assert.rejects(verifyJwtSvid(noExp, { ...opts, resolveKey }), /exp claim is missing/);
  });

  it('checks the audience and the subject', async () => {
    const { key, opts } = await setup();
    await assert.rejects(
      verifyJwtSvid(signJwtSvidSync({ key, kid: 'k1', claims }), { ...opts, audience: 'other' }),
      /audience mismatch/,
    );
    const priv = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const resolveKey = () => priv.publicKey;
    const badSub = rawToken(
      { alg: 'ES256', kid: 'k1' },
      { ...claims, sub: 'spiffe://Example.org/w' },
      priv.privateKey,
    );
    await assert.rejects(
      verifyJwtSvid(badSub, { ...opts, resolveKey }),
      /sub is not a valid SPIFFE ID/,
    );
    const noAud = rawToken(
      { alg: 'ES256', kid: 'k1' },
      { sub: claims.sub, exp: claims.exp },
      priv.privateKey,
    );
    await assert.rejects(verifyJwtSvid(noAud, { ...opts, resolveKey }), /aud claim is missing/);
    const single = rawToken(
      { alg: 'ES256', kid: 'k1' },
      { ...claims, aud: 'svc' },
      priv.privateKey,
    );
    assert.equal((await verifyJwtSvid(single, { ...opts, resolveKey })).spiffeId, claims.sub);
  });

  it('resolves keys in the trust domain of sub only, and requires kid', async () => {
    const { key, keys, opts } = await setup();
    // the same key registered for other.org does not make an example.org kid valid, nor vice versa
    keys.set('other.org/k2', key.publicKey);
    const foreign = signJwtSvidSync({ key, kid: 'k2', claims });
    await assert.rejects(
      verifyJwtSvid(foreign, opts),
      /unknown kid "k2" for trust domain "example\.org"/,
    );
    const other = signJwtSvidSync({
      key,
      kid: 'k1',
      claims: { ...claims, sub: 'spiffe://other.org/w' },
    });
    await assert.rejects(
      verifyJwtSvid(other, opts),
      /unknown kid "k1" for trust domain "other\.org"/,
    );
    const priv = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const noKid = rawToken({ alg: 'ES256' }, claims, priv.privateKey);
    await assert.rejects(
      verifyJwtSvid(noKid, { ...opts, resolveKey: () => priv.publicKey }),
      /kid header is required/,
    );
  });

  it('rejects alg none, HS256 keyed with the public key, and algorithm/key mismatches', async () => {
    const { key, opts } = await setup();
    const none = `${b64({ alg: 'none', kid: 'k1' })}.${b64(claims)}.`;
    await assert.rejects(verifyJwtSvid(none, opts), /segments must be non-empty|alg "none"/);
    const none2 = `${b64({ alg: 'none', kid: 'k1' })}.${b64(claims)}.AAAA`;
    await assert.rejects(verifyJwtSvid(none2, opts), /alg "none" is not allowed/);
    // classic confusion: HMAC with the PEM/DER of the public key as the secret
    for (const secret of [
      Buffer.from(key.publicKeyDer),
      Buffer.from(key.publicKey.export({ type: 'spki', format: 'pem' }) as string),
    ]) {
      const input = `${b64({ alg: 'HS256', kid: 'k1', typ: 'JWT' })}.${b64(claims)}`;
      const mac = createHmac('sha256', secret).update(input).digest('base64url');
      await assert.rejects(
        verifyJwtSvid(`${input}.${mac}`, opts),
        /algorithm "HS256" is not allowed/,
      );
    }
    // ES384 header over a P-256 key; RS256 header over an EC key
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const es384 = rawToken({ alg: 'ES384', kid: 'k1' }, claims, p256.privateKey);
    await assert.rejects(
      verifyJwtSvid(es384, { ...opts, resolveKey: () => p256.publicKey }),
      /does not match the key/,
    );
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rs = rawToken({ alg: 'RS256', kid: 'k1' }, claims, rsa.privateKey, false);
    await assert.rejects(
      verifyJwtSvid(rs, { ...opts, resolveKey: () => p256.publicKey }),
      /does not match the key/,
    );
    assert.equal(
      (await verifyJwtSvid(rs, { ...opts, resolveKey: () => rsa.publicKey })).spiffeId,
      claims.sub,
    );
  });

  it('rejects bad headers, bad signatures and malformed or oversized tokens', async () => {
    const { key, opts } = await setup();
    const good = signJwtSvidSync({ key, kid: 'k1', claims });
    const [h, p, s] = good.split('.') as [string, string, string];
    const priv = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const resolveKey = () => priv.publicKey;
    const withHeader = (hdr: object) => rawToken(hdr, claims, priv.privateKey);
    await assert.rejects(
      verifyJwtSvid(withHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' }), {
        ...opts,
        resolveKey,
      }),
      /typ/,
    );
    assert.ok(
      await verifyJwtSvid(withHeader({ alg: 'ES256', kid: 'k1', typ: 'JOSE' }), {
        ...opts,
        resolveKey,
      }),
    );
    await assert.rejects(
      verifyJwtSvid(withHeader({ alg: 'ES256', kid: 'k1', crit: ['exp'] }), {
        ...opts,
        resolveKey,
      }),
      /crit/,
    );
    await assert.rejects(
      verifyJwtSvid(withHeader({ alg: 'ES256', kid: 'k1', jku: 'https://x' }), {
        ...opts,
        resolveKey,
      }),
      /unsupported header "jku"/,
    );
    const otherSig = signJwtSvidSync({ key, kid: 'k1', claims: { ...claims, aud: ['x'] } }).split(
      '.',
    )[2];
    await assert.rejects(
      verifyJwtSvid(`${h}.${p}.${otherSig}`, opts),
      /signature verification failed/,
    );
    await assert.rejects(verifyJwtSvid(`${h}.${p}.${s.slice(0, -4)}`, opts), /signature/);
    await assert.rejects(verifyJwtSvid(`${h}.${p}`, opts), /3 segments/);
    await assert.rejects(verifyJwtSvid(`${h}..${s}`, opts), /segments must be non-empty/);
    await assert.rejects(verifyJwtSvid(`${h}.${p}=.${s}`, opts), /base64url/);
    await assert.rejects(verifyJwtSvid(`${h}.bm90anNvbg.${s}`, opts), /not valid JSON/);
    await assert.rejects(verifyJwtSvid(`WzFd.${p}.${s}`, opts), /header is not a JSON object/);
    await assert.rejects(verifyJwtSvid(good + 'A'.repeat(9000), opts), /larger than 8192 bytes/);
    await assert.rejects(verifyJwtSvid('', opts), /empty/);
    // a JWS JSON serialization is not accepted
    const json = JSON.stringify({ protected: h, payload: p, signature: s });
    await assert.rejects(verifyJwtSvid(json, opts), /compact/);
  });
});
