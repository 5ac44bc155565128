import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { describe, it } from 'node:test';
import type { ManagedKey } from '../key-manager.ts';
import { MemoryKeyManager } from '../keys/memory-key-manager.ts';
import { localKey } from '../keys/local-key.ts';
import { createIntermediateCa, createSelfSignedCa } from './ca.ts';
import { parseCertificate, subjectKeyId } from './certificate.ts';
import { assembleCertificate, buildTbs, randomSerial } from './certificate-builder.ts';
import {
  authorityKeyIdExt,
  caKeyUsageExt,
  extension,
  keyIdFromSubjectPublicKey,
  leafBasicConstraintsExt,
  leafKeyUsageExt,
  subjectAltNameExt,
} from './extensions.ts';
import { issueX509SvidSync } from './leaf.ts';
import { encodeName } from './name.ts';
import { signingAlgorithmFor } from './signature-algorithm.ts';
import { ecKey, HOUR, makeCa, NOW, type TestCa } from './testing/ca.ts';
import { verifyX509Svid } from './verify.ts';

function leaf(ca: TestCa, id = 'spiffe://example.org/w', notAfter = NOW + HOUR): Uint8Array {
  return issueX509SvidSync({
    ca,
    subjectPublicKey: createPublicKey(ecKey()),
    spiffeId: id,
    notBefore: NOW - 10_000,
    notAfter,
  }).der;
}

/** A hand-made leaf with arbitrary extensions, signed by `ca`. */
function customLeaf(ca: TestCa, extensions: Uint8Array[]): Uint8Array {
  const parsed = parseCertificate(ca.certDer);
  const key = createPublicKey(ecKey()).export({ type: 'spki', format: 'der' });
  const alg = signingAlgorithmFor(ca.key.type).algIdDer;
  const serial = randomSerial();
  const tbs = buildTbs({
    serial,
    algIdDer: alg,
    issuerDer: parsed.subject,
    notBefore: NOW - HOUR,
    notAfter: NOW + HOUR,
    subjectDer: encodeName([['O', 'x']]),
    spkiDer: key,
    extensions: [...extensions, authorityKeyIdExt(subjectKeyId(parsed)!)],
  });
  return assembleCertificate(tbs, alg, ca.key.signSync!(tbs, 'der'), serial, NOW + HOUR).der;
}

describe('verifyX509Svid', () => {
  it('returns the SPIFFE ID of a valid SVID', async () => {
    const ca = await makeCa();
    const v = verifyX509Svid([leaf(ca)], [ca.certDer], NOW);
    assert.equal(v.spiffeId, 'spiffe://example.org/w');
    assert.equal(v.id.trustDomain.name, 'example.org');
  });

  it('picks the bundle by the leaf trust domain when given a lookup', async () => {
    const a = await makeCa('ec-p256', 'a.org');
    const b = await makeCa('ec-p256', 'b.org');
    const bundles: Record<string, Uint8Array[]> = { 'a.org': [a.certDer], 'b.org': [b.certDer] };
    const lookup = (td: string) => bundles[td] ?? null;
    assert.equal(
      verifyX509Svid([leaf(b, 'spiffe://b.org/x')], lookup, NOW).spiffeId,
      'spiffe://b.org/x',
    );
    // b's SVID claims a.org: only a.org's bundle is consulted, so it fails
    assert.throws(
      () => verifyX509Svid([leaf(b, 'spiffe://a.org/x')], lookup, NOW),
      /does not lead to a CA/,
    );
    assert.throws(
      () => verifyX509Svid([leaf(b, 'spiffe://c.org/x')], lookup, NOW),
      /no X\.509 bundle for trust domain "c\.org"/,
    );
  });

  it('rejects an SVID from another CA, expired and not-yet-valid ones', async () => {
    const ca = await makeCa();
    const other = await makeCa();
    assert.throws(() => verifyX509Svid([leaf(other)], [ca.certDer], NOW), /does not lead to a CA/);
    assert.throws(
      () => verifyX509Svid([leaf(ca)], [ca.certDer], NOW + 2 * HOUR),
      /leaf certificate has expired/,
    );
    assert.throws(
      () => verifyX509Svid([leaf(ca)], [ca.certDer], NOW - 30 * 60_000),
      /not yet valid/,
    );
    assert.throws(() => verifyX509Svid([leaf(ca)], [ca.certDer], NOW + 1000 * HOUR), /expired/);
  });

  it('validates a chain through an intermediate CA', async () => {
    const rootKey = ecKey();
    const rootManaged = localKey('root', rootKey);
    const rootCa = await createSelfSignedCa({
      key: rootManaged,
      trustDomain: 'example.org',
      notBefore: NOW - HOUR,
      notAfter: NOW + 24 * HOUR,
    });
    const root = { key: rootManaged, certDer: rootCa.der };
    const key: ManagedKey = await new MemoryKeyManager().generate('i', 'ec-p256');
    const inter = await createIntermediateCa({
      key,
      trustDomain: 'example.org',
      notBefore: NOW - HOUR,
      notAfter: NOW + 10 * HOUR,
      upstream: { certChainDer: [root.certDer], key: rootKey },
    });
    const l = leaf({ key, certDer: inter.der });
    assert.equal(
      verifyX509Svid([l, inter.der], [root.certDer], NOW).spiffeId,
      'spiffe://example.org/w',
    );
    assert.equal(
      verifyX509Svid([l, inter.der, root.certDer], [root.certDer], NOW).spiffeId,
      'spiffe://example.org/w',
    );
    assert.throws(() => verifyX509Svid([l], [root.certDer], NOW), /does not lead to a CA/);
  });

  it('rejects leaves that break the X509-SVID rules', async () => {
    const ca = await makeCa();
    const san = subjectAltNameExt(['spiffe://example.org/w'], [], false);
    const cases: Array<[Uint8Array[], RegExp]> = [
      [[caKeyUsageExt, leafBasicConstraintsExt, san], /keyCertSign/],
      [
        [
          leafKeyUsageExt,
          extension('2.5.29.19', true, Uint8Array.of(0x30, 0x03, 0x01, 0x01, 0xff)),
          san,
        ],
        /is a CA/,
      ],
      [
        [
          leafKeyUsageExt,
          leafBasicConstraintsExt,
          subjectAltNameExt(['spiffe://example.org/a', 'spiffe://example.org/b'], [], false),
        ],
        /exactly one URI SAN, it has 2/,
      ],
      [[leafKeyUsageExt, leafBasicConstraintsExt], /exactly one URI SAN, it has 0/],
      [
        [
          leafKeyUsageExt,
          leafBasicConstraintsExt,
          subjectAltNameExt(['spiffe://example.org'], [], false),
        ],
        /needs a path/,
      ],
      [
        [
          leafKeyUsageExt,
          leafBasicConstraintsExt,
          subjectAltNameExt(['https://example.org/w'], [], false),
        ],
        /scheme/,
      ],
      [
        [
          leafKeyUsageExt,
          leafBasicConstraintsExt,
          san,
          extension('1.2.3.4', true, Uint8Array.of(5, 0)),
        ],
        /unsupported critical extension 1\.2\.3\.4/,
      ],
    ];
    for (const [exts, re] of cases) {
      assert.throws(() => verifyX509Svid([customLeaf(ca, exts)], [ca.certDer], NOW), re);
    }
    // the same hand-made template with sane extensions passes, so the failures above are the rules
    const ok = customLeaf(ca, [leafKeyUsageExt, leafBasicConstraintsExt, san]);
    assert.equal(verifyX509Svid([ok], [ca.certDer], NOW).spiffeId, 'spiffe://example.org/w');
    assert.equal(keyIdFromSubjectPublicKey(Uint8Array.of(1)).length, 20);
  });

  it('rejects garbage and empty chains with clear errors', async () => {
    const ca = await makeCa();
    assert.throws(() => verifyX509Svid([], [ca.certDer], NOW), /empty certificate chain/);
    assert.throws(
      () => verifyX509Svid([Uint8Array.of(1, 2, 3)], [ca.certDer], NOW),
      /invalid leaf certificate/,
    );
    assert.throws(() => verifyX509Svid([leaf(ca)], [], NOW), /no X\.509 bundle/);
  });
});
