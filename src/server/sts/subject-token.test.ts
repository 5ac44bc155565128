// verifySubjectToken (issuers.ts) on node:crypto: the claim and header rules that jose used to
// enforce, kept now that verification is synchronous (jws.ts).
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import * as jose from 'jose';
import { OAuthError } from './errors.ts';
import { algsForKey, verifySubjectToken, type TrustedIssuer } from './issuers.ts';

const ISS = 'https://issuer.example';
const NOW = 1_800_000_000_000;
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const issuers = new Map<string, TrustedIssuer>([
  [
    ISS,
    {
      issuer: ISS,
      audiences: ['aud-1', 'aud-2'],
      keys: new Map([['k1', { key: publicKey, algs: algsForKey(publicKey) }]]),
    },
  ],
]);
const t = NOW / 1000;
const sign = (
  claims: Record<string, unknown>,
  header: Record<string, unknown> = {},
  key: KeyObject = privateKey,
) =>
  new jose.SignJWT({ iss: ISS, aud: 'aud-2', iat: t - 10, exp: t + 300, ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1', ...header })
    .sign(key);
const refused = async (token: string, description: RegExp) =>
  assert.rejects(verifySubjectToken(token, issuers, NOW), (e: unknown) => {
    assert.ok(e instanceof OAuthError);
    assert.equal(e.code, 'invalid_grant');
    assert.match(e.description, description);
    return true;
  });

describe('verifySubjectToken', () => {
  it('accepts a good token; aud may be a string or a list meeting one audience', async () => {
    const v = await verifySubjectToken(await sign({}), issuers, NOW);
    assert.equal(v.issuer, ISS);
    assert.equal(v.claims.aud, 'aud-2');
    await verifySubjectToken(await sign({ aud: ['x', 'aud-1'] }), issuers, NOW);
    await verifySubjectToken(await sign({ exp: t - 59, nbf: t + 59, iat: t + 59 }), issuers, NOW);
  });

  it('refuses signature, alg/key mismatch, crit, and malformed tokens', async () => {
    await refused(await sign({}, {}, other.privateKey), /signature/);
    const es384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    await refused(await sign({}, { alg: 'ES384' }, es384.privateKey), /algorithm/);
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const input = `${b64({ alg: 'ES256', kid: 'k1', crit: ['x'], x: 1 })}.${b64({ iss: ISS, aud: 'aud-1', exp: t + 60 })}`;
    const sig = cryptoSign('sha256', Buffer.from(input), {
      key: privateKey,
      dsaEncoding: 'ieee-p1363',
    });
    await refused(`${input}.${sig.toString('base64url')}`, /invalid/);
    await refused('a.b', /well-formed/);
    await refused('a.b.c.d', /well-formed/);
    const good = await sign({});
    await refused(good.slice(0, -2) + (good.endsWith('AA') ? 'BB' : 'AA'), /signature/);
  });

  it('checks aud, exp, nbf and iat with 60 s leeway', async () => {
    await refused(await sign({ aud: ['x'] }), /audience/);
    await refused(await sign({ aud: 7 }), /audience/);
    await refused(await sign({ exp: undefined }), /"exp"/);
    await refused(await sign({ exp: String(t + 300) }), /"exp"/);
    await refused(await sign({ exp: t - 60 }), /expired/);
    await refused(await sign({ nbf: t + 61 }), /not yet valid/);
    await refused(await sign({ nbf: 'soon' }), /"nbf"/);
    await refused(await sign({ iat: t + 61 }), /future/);
    await refused(await sign({ iat: 'now' }), /"iat"/);
  });
});
