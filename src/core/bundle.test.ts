import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bundleEquals, emptyBundle, withJwtAuthority, withX509Authority } from './bundle.ts';

const der = (n: number) => new Uint8Array([0x30, n, n]);
const jwtKey = (kid: string) => ({ kid, publicKeyDer: der(9), expiresAt: 1000 });

describe('bundle helpers', () => {
  it('emptyBundle has no keys, sequence 0 and the given refresh hint', () => {
    assert.deepEqual(emptyBundle('example.org'), {
      trustDomain: 'example.org',
      x509Authorities: [],
      jwtAuthorities: [],
      sequence: 0,
      refreshHint: 300,
    });
    assert.equal(emptyBundle('example.org', 60).refreshHint, 60);
  });

  it('withX509Authority adds an untainted CA once, without mutating the input', () => {
    const b0 = emptyBundle('example.org');
    const b1 = withX509Authority(b0, der(1));
    assert.deepEqual(b1.x509Authorities, [{ der: der(1), tainted: false }]);
    assert.equal(b0.x509Authorities.length, 0);
    assert.equal(withX509Authority(b1, der(1)), b1, 'same bytes: unchanged object');
    assert.equal(withX509Authority(b1, der(2)).x509Authorities.length, 2);
  });

  it('withJwtAuthority adds a key once per kid', () => {
    const b1 = withJwtAuthority(emptyBundle('example.org'), jwtKey('k1'));
    assert.deepEqual(b1.jwtAuthorities, [{ ...jwtKey('k1'), tainted: false }]);
    assert.equal(withJwtAuthority(b1, { ...jwtKey('k1'), expiresAt: 5 }), b1);
    assert.deepEqual(
      withJwtAuthority(b1, jwtKey('k2')).jwtAuthorities.map((k) => k.kid),
      ['k1', 'k2'],
    );
  });

  it('bundleEquals compares content, ignoring the sequence', () => {
    const a = withJwtAuthority(withX509Authority(emptyBundle('td'), der(1)), jwtKey('k1'));
    const b = withJwtAuthority(withX509Authority(emptyBundle('td'), der(1)), jwtKey('k1'));
    assert.ok(bundleEquals(a, b));
    assert.ok(bundleEquals(a, { ...b, sequence: 7 }));
    assert.ok(!bundleEquals(a, { ...b, trustDomain: 'other' }));
    assert.ok(!bundleEquals(a, { ...b, refreshHint: 1 }));
    assert.ok(!bundleEquals(a, withX509Authority(b, der(2))));
    assert.ok(!bundleEquals(a, { ...b, x509Authorities: [{ der: der(3), tainted: false }] }));
    assert.ok(!bundleEquals(a, { ...b, x509Authorities: [{ der: der(1), tainted: true }] }));
    const k = b.jwtAuthorities[0];
    assert.ok(k);
    assert.ok(!bundleEquals(a, { ...b, jwtAuthorities: [{ ...k, tainted: true }] }));
    assert.ok(!bundleEquals(a, { ...b, jwtAuthorities: [{ ...k, kid: 'k9' }] }));
    assert.ok(!bundleEquals(a, { ...b, jwtAuthorities: [{ ...k, expiresAt: 1 }] }));
    assert.ok(!bundleEquals(a, { ...b, jwtAuthorities: [{ ...k, publicKeyDer: der(8) }] }));
  });
});
