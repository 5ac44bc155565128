import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ManualClock } from '../../core/clock.ts';
import {
  startDiscoveryIssuer,
  type DiscoveryIssuer,
} from '../../../test/helpers/test-oidc-issuer.ts';
import {
  DEFAULT_DISCOVERY,
  DiscoveryKeys,
  discoverKeys,
  type DiscoveryOptions,
} from './discovery.ts';
import { verifySubjectToken } from './issuers.ts';

describe('OIDC discovery of issuer keys', () => {
  let iss: DiscoveryIssuer;
  let clock: ManualClock;
  let o: DiscoveryOptions;
  before(async () => {
    iss = await startDiscoveryIssuer();
  });
  after(() => iss.close());
  beforeEach(() => {
    iss.behaviour = {};
    iss.hits.clear();
    clock = new ManualClock(Date.now());
    o = { ...DEFAULT_DISCOVERY, timeoutMs: 1000, clock, ca: [iss.caPem] };
  });
  const jwksHits = () => iss.hits.get('/jwks') ?? 0;

  it('fetches the discovery document, then the JWKS', async () => {
    const keys = await discoverKeys(iss.issuer, o);
    assert.deepEqual([...keys.keys()], [iss.kid]);
    assert.deepEqual(keys.get(iss.kid)?.algs, ['ES256']);
    assert.equal(iss.hits.get('/.well-known/openid-configuration'), 1);
    assert.equal(jwksHits(), 1);
  });

  it('refuses a document whose issuer differs, even by a trailing slash', async () => {
    iss.behaviour.issuerInDocument = iss.issuer + '/';
    await assert.rejects(discoverKeys(iss.issuer, o), /its issuer ".*\/" is not the registered/);
    assert.equal(jwksHits(), 0, 'the JWKS is not fetched');
  });

  it('refuses an oversized JWKS, a slow issuer and a redirect', async () => {
    iss.behaviour.jwksPadBytes = 300 * 1024;
    await assert.rejects(discoverKeys(iss.issuer, o), /larger than 262144 bytes/);
    iss.behaviour = { delayMs: 400 };
    await assert.rejects(
      discoverKeys(iss.issuer, { ...o, timeoutMs: 150 }),
      /no complete response within 150 ms/,
    );
    iss.behaviour = { redirectJwks: 'https://attacker.example/jwks' };
    await assert.rejects(discoverKeys(iss.issuer, o), /redirect \(302\) refused/);
  });

  it('refuses http and an untrusted certificate', async () => {
    await assert.rejects(discoverKeys(iss.issuer.replace('https:', 'http:'), o), /is not https/);
    await assert.rejects(
      discoverKeys(iss.issuer, { ...o, ca: [] }),
      /self-signed certificate|unable to verify/,
    );
  });

  it('an unknown kid refreshes once; concurrent misses share the fetch; then 30 s quiet', async () => {
    const dk = new DiscoveryKeys(iss.issuer, o);
    const trusted = dk.trusted([]);
    assert.equal(trusted.keys.size, 0, 'no I/O before first use');
    assert.ok(await dk.resolve(iss.kid));
    assert.equal(dk.fetches, 1);
    iss.rotate();
    clock.advance(30_000);
    const misses = await Promise.all(Array.from({ length: 20 }, () => dk.resolve('made-up')));
    assert.ok(misses.every((m) => m === undefined));
    assert.equal(dk.fetches, 2, 'twenty concurrent misses, one refresh');
    assert.equal(jwksHits(), 2);
    // The refresh found the rotated key.
    assert.ok(trusted.keys.get(iss.kid));
    await dk.resolve('another-made-up');
    assert.equal(dk.fetches, 2, 'no refresh within 30 s');
    iss.rotate();
    assert.equal(await dk.resolve(iss.kid), undefined, 'a new key waits for the window');
    clock.advance(30_000);
    assert.ok(await dk.resolve(iss.kid));
    assert.equal(dk.fetches, 3);
  });

  it('a token signed with a rotated key verifies after one refresh', async () => {
    const dk = new DiscoveryKeys(iss.issuer, o);
    const issuers = new Map([[iss.issuer, dk.trusted(['aud-1'])]]);
    const now = Math.floor(clock.now() / 1000);
    const claims = { sub: 'x', aud: 'aud-1', iat: now, exp: now + 60 };
    const v = await verifySubjectToken(await iss.sign(claims), issuers, clock.now());
    assert.equal(v.claims.sub, 'x');
    clock.advance(31_000);
    iss.rotate();
    const v2 = await verifySubjectToken(await iss.sign(claims), issuers, clock.now());
    assert.equal(v2.issuer, iss.issuer);
    assert.equal(dk.fetches, 2);
  });

  it('an unreachable issuer is an invalid_grant naming the cause, old keys stay usable', async () => {
    const dk = new DiscoveryKeys(iss.issuer, o);
    await dk.refresh();
    const kid = iss.kid;
    iss.behaviour.issuerInDocument = 'https://evil.example';
    clock.advance(30_000);
    assert.equal(await dk.resolve('nope'), undefined);
    assert.match(dk.lastError, /not the registered/);
    assert.ok(dk.keys.get(kid), 'stale keys kept');
    const broken = new DiscoveryKeys(iss.issuer, o);
    await assert.rejects(broken.resolve('k'), (e: Error & { reason?: string }) => {
      assert.match(e.reason ?? '', /unavailable: .*not the registered/);
      return true;
    });
  });
});
