// FederatedSubjectTokens: key resolution from a federated bundle and the bundle cache's bounds.
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import * as jose from 'jose';
import { emptyBundle, withJwtAuthority, type Bundle } from '../../core/bundle.ts';
import { OAuthError } from './errors.ts';
import { FederatedSubjectTokens, federatedTrustDomain } from './federated.ts';

const AUD = 'https://sts.example.org';
const k1 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const spki = (k: KeyObject) => new Uint8Array(k.export({ format: 'der', type: 'spki' }));
const bundleWith = (seq: number, kid: string, key: KeyObject, tainted = false): Bundle => {
  const b = withJwtAuthority(
    { ...emptyBundle('partner.org'), sequence: seq },
    { kid, publicKeyDer: spki(key), expiresAt: 0 },
  );
  return tainted ? { ...b, jwtAuthorities: b.jwtAuthorities.map((a) => ({ ...a, tainted })) } : b;
};

function setup(initial: Bundle | null) {
  let now = 1_800_000_000_000;
  let current = initial;
  let reads = 0;
  const f = new FederatedSubjectTokens({
    trustDomain: 'example.org',
    audiences: new Map([['partner.org', [AUD]]]),
    bundle: async () => {
      reads++;
      await new Promise((r) => setImmediate(r));
      return current;
    },
    maxStalenessMs: 1000,
    now: () => now,
  });
  const token = (kid: string, key: KeyObject = k1.privateKey, over: Record<string, unknown> = {}) =>
    new jose.SignJWT({
      sub: 'spiffe://partner.org/w',
      aud: [AUD],
      exp: now / 1000 + 60,
      ...over,
    })
      .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
      .sign(key);
  const verify = async (t: string) =>
    f.verify(t, jose.decodeJwt(t) as Record<string, unknown>, now);
  return {
    f,
    token,
    verify,
    set: (b: Bundle | null) => (current = b),
    tick: (ms: number) => (now += ms),
    reads: () => reads,
  };
}

const refused = (p: Promise<unknown>, reason: RegExp) =>
  assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof OAuthError);
    assert.equal(e.code, 'invalid_grant');
    assert.match(e.reason, reason);
    return true;
  });

describe('FederatedSubjectTokens', () => {
  it('parses pseudo-issuers', () => {
    assert.equal(federatedTrustDomain('spiffe://partner.org'), 'partner.org');
    assert.equal(federatedTrustDomain('spiffe://partner.org/x'), undefined);
    assert.equal(federatedTrustDomain('https://partner.org'), undefined);
  });

  it('verifies with the bundle key; claims carry the pseudo-issuer as iss', async () => {
    const s = setup(bundleWith(1, 'p-1', k1.publicKey));
    const v = await s.verify(await s.token('p-1', k1.privateKey, { iss: 'https://x' }));
    assert.equal(v.issuer, 'spiffe://partner.org');
    assert.equal(v.claims.iss, 'spiffe://partner.org');
  });

  it('refuses tainted keys and tokens of our own trust domain', async () => {
    const s = setup(bundleWith(1, 'p-1', k1.publicKey, true));
    await refused(s.verify(await s.token('p-1')), /unknown kid/);
    await refused(
      s.verify(await s.token('p-1', k1.privateKey, { sub: 'spiffe://example.org/w' })),
      /own trust domain/,
    );
  });

  it('concurrent misses share one read; a cached bundle is used until it is too old', async () => {
    const s = setup(bundleWith(1, 'p-1', k1.publicKey));
    const t = await s.token('p-1');
    await Promise.all([s.verify(t), s.verify(t), s.verify(t)]);
    assert.equal(s.reads(), 1);
    // Removed at the source: still accepted while the cached copy is within the bound...
    s.set(null);
    s.tick(1000);
    await s.verify(await s.token('p-1'));
    assert.equal(s.reads(), 1);
    // ...and refused once it is older.
    s.tick(1);
    await refused(s.verify(await s.token('p-1')), /no bundle/);
    assert.equal(s.reads(), 2);
  });
});
