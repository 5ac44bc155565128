import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { createLocalJWKSet, importJWK, jwtVerify } from 'jose';
import type { Bundle } from '../core/bundle.ts';
import { withJwtAuthority, withX509Authority, emptyBundle, bundleEquals } from '../core/bundle.ts';
import {
  bundleToJwks,
  bundleToPem,
  bundleToSpiffeJson,
  parseSpiffeBundle,
  x509BundleDer,
} from './bundle-format.ts';
import { signJwtSvidSync } from './jwt/sign.ts';
import { MemoryKeyManager } from './keys/memory-key-manager.ts';
import { pemToDers } from './x509/pem.ts';
import { makeCa } from './x509/testing/ca.ts';

async function sampleBundle() {
  const km = new MemoryKeyManager();
  const ca1 = await makeCa('ec-p256');
  const ca2 = await makeCa('rsa-2048');
  const jwtEc = await km.generate('j1', 'ec-p256');
  const jwtRsa = await km.generate('j2', 'rsa-2048');
  let b: Bundle = { ...emptyBundle('example.org', 600), sequence: 7 };
  b = withX509Authority(b, ca1.certDer);
  b = withX509Authority(b, ca2.certDer);
  b = withJwtAuthority(b, { kid: 'kid-ec', publicKeyDer: jwtEc.publicKeyDer, expiresAt: 0 });
  b = withJwtAuthority(b, { kid: 'kid-rsa', publicKeyDer: jwtRsa.publicKeyDer, expiresAt: 0 });
  return { b, jwtEc, jwtRsa, ca1, ca2 };
}

describe('SPIFFE bundle JSON', () => {
  it('encodes x509-svid keys with x5c and no kid, jwt-svid keys with kid', async () => {
    const { b, ca1 } = await sampleBundle();
    const json = bundleToSpiffeJson(b);
    assert.equal(json.spiffe_sequence, 7);
    assert.equal(json.spiffe_refresh_hint, 600);
    const x = json.keys.filter((k) => k.use === 'x509-svid');
    assert.equal(x.length, 2);
    for (const k of x) {
      assert.equal(k.kid, undefined);
      assert.equal(k.x5c?.length, 1);
    }
    assert.equal(x[0]?.kty, 'EC');
    assert.equal(x[0]?.crv, 'P-256');
    assert.equal(x[1]?.kty, 'RSA');
    const ca1Jwk = new X509Certificate(ca1.certDer).publicKey.export({ format: 'jwk' });
    assert.equal(x[0]?.x, ca1Jwk.x);
    assert.deepEqual(
      json.keys.filter((k) => k.use === 'jwt-svid').map((k) => k.kid),
      ['kid-ec', 'kid-rsa'],
    );
  });

  it('round-trips through parseSpiffeBundle', async () => {
    const { b } = await sampleBundle();
    const parsed = parseSpiffeBundle(JSON.stringify(bundleToSpiffeJson(b)), 'example.org');
    assert.ok(bundleEquals(parsed, b));
    assert.equal(parsed.sequence, 7);
  });

  it('ignores keys with unknown kty or use, and x509 keys without x5c', () => {
    const doc = {
      keys: [
        { kty: 'oct', use: 'jwt-svid', kid: 'a', k: 'AAAA' },
        { kty: 'EC', use: 'wit-svid', kid: 'b', crv: 'P-256', x: 'x', y: 'y' },
        { kty: 'EC', kid: 'c' },
        { use: 'jwt-svid', kid: 'd' },
        { kty: 'EC', use: 'x509-svid', x5c: [] },
        { kty: 'EC', use: 'x509-svid' },
      ],
      unknown_member: true,
    };
    const b = parseSpiffeBundle(JSON.stringify(doc), 'spiffe://example.org');
    assert.equal(b.trustDomain, 'example.org');
    assert.equal(b.x509Authorities.length, 0);
    assert.equal(b.jwtAuthorities.length, 0);
    assert.equal(b.refreshHint, 300);
    assert.equal(b.sequence, 0);
  });

  it('uses only the first x5c entry', async () => {
    const { ca1, ca2 } = await sampleBundle();
    const der = (c: Uint8Array) => Buffer.from(c).toString('base64');
    const doc = {
      keys: [{ kty: 'EC', use: 'x509-svid', x5c: [der(ca1.certDer), der(ca2.certDer)] }],
    };
    const b = parseSpiffeBundle(JSON.stringify(doc), 'example.org');
    assert.deepEqual(
      b.x509Authorities.map((a) => a.der),
      [ca1.certDer],
    );
  });

  it('rejects malformed documents with clear errors', () => {
    const p = (s: string, max?: number) => () => parseSpiffeBundle(s, 'example.org', max);
    assert.throws(p('{'), /not valid JSON/);
    assert.throws(p('[]'), /not a JSON object/);
    assert.throws(p('{}'), /"keys" is missing/);
    assert.throws(p('{"keys":[1]}'), /keys\[0\] is not an object/);
    assert.throws(
      p('{"keys":[{"kty":"EC","use":"jwt-svid","crv":"P-256","x":"a","y":"b"}]}'),
      /has no kid/,
    );
    assert.throws(
      p('{"keys":[{"kty":"EC","use":"jwt-svid","kid":"k","crv":"P-256","x":"a","y":"b"}]}'),
      /not a valid public key/,
    );
    assert.throws(p('{"keys":[{"kty":"EC","use":"x509-svid","x5c":["!!"]}]}'), /not base64/);
    assert.throws(
      p('{"keys":[{"kty":"EC","use":"x509-svid","x5c":["AAAA"]}]}'),
      /not a certificate/,
    );
    assert.throws(p('{"keys":[],"spiffe_sequence":-1}'), /spiffe_sequence/);
    assert.throws(p('{"keys":[],"spiffe_sequence":18446744073709551615}'), /spiffe_sequence/);
    assert.throws(p('{"keys":[],"spiffe_refresh_hint":"5m"}'), /spiffe_refresh_hint/);
    assert.throws(p('{"keys":[]}', 5), /larger than 5 bytes/);
    assert.throws(() => parseSpiffeBundle('{"keys":[]}', 'Bad_TD'), /trust domain/);
  });

  it('rejects duplicate jwt-svid kids', async () => {
    const { b } = await sampleBundle();
    const json = bundleToSpiffeJson(b);
    const jwt = json.keys.find((k) => k.use === 'jwt-svid');
    json.keys.push({ ...jwt! });
    assert.throws(
      () => parseSpiffeBundle(JSON.stringify(json), 'example.org'),
      /duplicate jwt-svid kid/,
    );
  });
});

describe('plain JWKS, PEM and DER', () => {
  it('JWKS works with jose createLocalJWKSet and importJWK', async () => {
    const { b, jwtEc, jwtRsa } = await sampleBundle();
    const jwks = bundleToJwks(b, { use: 'sig' });
    assert.deepEqual(
      jwks.keys.map((k) => [k.kid, k.alg, k.use]),
      [
        ['kid-ec', 'ES256', 'sig'],
        ['kid-rsa', 'RS256', 'sig'],
      ],
    );
    assert.equal(JSON.stringify(bundleToJwks(b)).includes('"use"'), false);
    const set = createLocalJWKSet(bundleToJwks(b));
    const claims = {
      sub: 'spiffe://example.org/w',
      aud: ['svc'],
      exp: 4_000_000_000,
      iat: 1_900_000_000,
    };
    for (const [key, kid] of [
      [jwtEc, 'kid-ec'],
      [jwtRsa, 'kid-rsa'],
    ] as const) {
      const token = signJwtSvidSync({ key, kid, claims });
      const v = await jwtVerify(token, set, { audience: 'svc' });
      assert.equal(v.protectedHeader.kid, kid);
    }
    const imported = await importJWK(jwks.keys[0]!, 'ES256');
    assert.ok(imported);
  });

  it('PEM and concatenated DER hold every CA certificate in order', async () => {
    const { b, ca1, ca2 } = await sampleBundle();
    assert.deepEqual(pemToDers(bundleToPem(b)), [ca1.certDer, ca2.certDer]);
    assert.deepEqual(Buffer.from(x509BundleDer(b)), Buffer.concat([ca1.certDer, ca2.certDer]));
  });
});
