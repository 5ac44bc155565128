import assert from 'node:assert/strict';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import 'reflect-metadata';
import * as px509 from '@peculiar/x509';
import type { KeyType } from '../../core/authority.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { MemoryKeyManager } from '../keys/memory-key-manager.ts';
import { createIntermediateCa } from './ca.ts';
import { certNotAfter, certSerialHex } from './cert-info.ts';
import { issueX509Svid, issueX509SvidSync } from './leaf.ts';
import { derToPem, pemToDers } from './pem.ts';
import { ecKey, HOUR, makeCa, NOW, openssl, opensslText, opensslVerify } from './testing/ca.ts';
import { loadUpstreamCa } from './upstream-ca.ts';

function leafFor(ca: Awaited<ReturnType<typeof makeCa>>, extra: { dnsNames?: string[] } = {}) {
  return issueX509SvidSync({
    ca,
    subjectPublicKey: createPublicKey(ecKey()),
    spiffeId: 'spiffe://example.org/ns/prod/sa/api',
    notBefore: NOW - 10_000,
    notAfter: NOW + HOUR,
    ...extra,
  });
}

describe('CA certificates', () => {
  for (const type of ['ec-p256', 'ec-p384', 'rsa-2048'] as KeyType[]) {
    it(`self-signed ${type} CA has the SPIFFE CA template`, async () => {
      const ca = await makeCa(type);
      const text = opensslText(ca.certDer);
      assert.match(text, /Basic Constraints: critical\s+CA:TRUE/);
      assert.match(text, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
      assert.match(text, /Subject Key Identifier/);
      assert.match(text, /URI:spiffe:\/\/example\.org\s*$/m);
      assert.match(text, /Subject: C ?= ?US, O ?= ?Tessera, serialNumber ?= ?\d+/);
      assert.match(opensslVerify(ca.certDer, [ca.certDer]), /: OK/);
      const x = new X509Certificate(ca.certDer);
      assert.ok(x.ca && x.checkIssued(x) && x.verify(x.publicKey));
      // @peculiar/x509 reads the same KeyUsage bits
      const p = new px509.X509Certificate(ca.certDer);
      const ku = p.getExtension(px509.KeyUsagesExtension);
      assert.equal(ku?.usages, px509.KeyUsageFlags.keyCertSign | px509.KeyUsageFlags.cRLSign);
    });
  }

  it('serial is positive and at most 128 bits; helpers read it back', async () => {
    const ca = await makeCa();
    const x = new X509Certificate(ca.certDer);
    assert.equal(certSerialHex(ca.certDer), x.serialNumber.toLowerCase().replace(/^(00)+/, ''));
    assert.ok(certSerialHex(ca.certDer).length <= 32);
    assert.equal(certNotAfter(ca.certDer), new Date(x.validTo).getTime());
  });
});

describe('leaf X509-SVIDs', () => {
  for (const type of ['ec-p256', 'ec-p384', 'rsa-2048'] as KeyType[]) {
    it(`issued by a ${type} CA verify with openssl and node`, async () => {
      const ca = await makeCa(type);
      const leaf = leafFor(ca, { dnsNames: ['api.example.org', 'api2.example.org'] });
      assert.match(opensslVerify(leaf.der, [ca.certDer]), /: OK/);
      const text = opensslText(leaf.der);
      assert.match(
        text,
        /Key Usage: critical\s+Digital Signature, Key Encipherment, Key Agreement/,
      );
      assert.doesNotMatch(text, /Certificate Sign|CRL Sign/);
      assert.match(text, /Basic Constraints: critical\s+CA:FALSE/);
      assert.match(
        text,
        /Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/,
      );
      assert.match(text, /Subject Key Identifier/);
      assert.match(text, /Authority Key Identifier/);
      assert.equal(text.match(/URI:/g)?.length, 1);
      assert.match(
        text,
        /URI:spiffe:\/\/example\.org\/ns\/prod\/sa\/api, DNS:api\.example\.org, DNS:api2\.example\.org/,
      );
      assert.match(text, /Subject: C ?= ?US, O ?= ?Tessera, CN ?= ?api\.example\.org/);
      const x = new X509Certificate(leaf.der);
      const cx = new X509Certificate(ca.certDer);
      assert.ok(x.checkIssued(cx));
      assert.ok(x.verify(cx.publicKey));
      assert.equal(x.ca, false);
      assert.equal(leaf.serialHex, x.serialNumber.toLowerCase().replace(/^(00)+/, ''));
    });
  }

  it('AKID equals the CA SKID and the SKID is the SHA-1 of the key', async () => {
    const ca = await makeCa();
    const leaf = new px509.X509Certificate(leafFor(ca).der);
    const caCert = new px509.X509Certificate(ca.certDer);
    const akid = leaf.getExtension(px509.AuthorityKeyIdentifierExtension);
    const caSkid = caCert.getExtension(px509.SubjectKeyIdentifierExtension);
    assert.equal(akid?.keyId, caSkid?.keyId);
    const ku = leaf.getExtension(px509.KeyUsagesExtension);
    assert.ok(ku?.critical);
    assert.equal(
      ku?.usages,
      px509.KeyUsageFlags.digitalSignature |
        px509.KeyUsageFlags.keyEncipherment |
        px509.KeyUsageFlags.keyAgreement,
    );
  });

  it('without DNS names the subject is C=US, O=Tessera and the SAN is one URI', async () => {
    const ca = await makeCa();
    const text = opensslText(leafFor(ca).der);
    assert.match(text, /Subject: C ?= ?US, O ?= ?Tessera\n/);
    assert.match(
      text,
      /Subject Alternative Name: \n\s+URI:spiffe:\/\/example\.org\/ns\/prod\/sa\/api\n/,
    );
  });

  it('caps notAfter at the CA notAfter and keeps notBefore as given', async () => {
    const ca = await makeCa();
    const leaf = issueX509SvidSync({
      ca,
      subjectPublicKey: createPublicKey(ecKey()),
      spiffeId: 'spiffe://example.org/w',
      notBefore: NOW - 10_000,
      notAfter: NOW + 1000 * HOUR,
    });
    assert.equal(leaf.notAfter, certNotAfter(ca.certDer));
    assert.equal(new Date(new X509Certificate(leaf.der).validFrom).getTime(), NOW - 10_000);
  });

  it('rejects bad input', async () => {
    const ca = await makeCa();
    const base = {
      ca,
      subjectPublicKey: createPublicKey(ecKey()),
      notBefore: NOW,
      notAfter: NOW + HOUR,
    };
    assert.throws(
      () => issueX509SvidSync({ ...base, spiffeId: 'spiffe://example.org' }),
      InvalidArgumentError,
    );
    assert.throws(
      () => issueX509SvidSync({ ...base, spiffeId: 'https://x/y' }),
      InvalidArgumentError,
    );
    assert.throws(
      () =>
        issueX509SvidSync({ ...base, spiffeId: 'spiffe://example.org/w', dnsNames: ['bad name'] }),
      /DNS/,
    );
    assert.throws(
      () => issueX509SvidSync({ ...base, spiffeId: 'spiffe://example.org/w', notAfter: NOW }),
      /notAfter/,
    );
    const other = await new MemoryKeyManager().generate('other', 'ec-p256');
    assert.throws(
      () =>
        issueX509SvidSync({
          ...base,
          ca: { certDer: ca.certDer, key: other },
          spiffeId: 'spiffe://example.org/w',
        }),
      /does not match/,
    );
  });

  it('the async issuer works with a key that only signs asynchronously (KMS-like)', async () => {
    const ca = await makeCa();
    const { signSync: _sync, ...kms } = ca.key;
    const leaf = await issueX509Svid({
      ca: { certDer: ca.certDer, key: kms },
      subjectPublicKey: createPublicKey(ecKey()),
      spiffeId: 'spiffe://example.org/w',
      notBefore: NOW,
      notAfter: NOW + HOUR,
    });
    assert.match(opensslVerify(leaf.der, [ca.certDer]), /: OK/);
  });
});

describe('intermediate CA from an upstream CA', () => {
  function upstreamPem(days = 30): { cert: string; key: string } {
    const out = openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        'k.pem',
        '-out',
        'c.pem',
        '-subj',
        '/O=Upstream Root',
        '-days',
        String(days),
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ],
      {},
      ['k.pem', 'c.pem'],
    );
    const key =
      /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/.exec(out)?.[0] ?? '';
    const cert =
      /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/.exec(out)?.[0] ?? '';
    return { cert, key };
  }

  it('chains leaf → intermediate → upstream root, with AKID = upstream SKID and capped notAfter', async () => {
    const up = upstreamPem(1);
    const upstream = loadUpstreamCa(up.cert, up.key);
    const now = Date.now();
    const key = await new MemoryKeyManager().generate('int', 'ec-p256');
    const inter = await createIntermediateCa({
      key,
      trustDomain: 'example.org',
      notBefore: now - HOUR,
      notAfter: now + 100 * 24 * HOUR,
      upstream,
    });
    const root = upstream.certChainDer[0]!;
    assert.equal(inter.notAfter, certNotAfter(root));
    const pi = new px509.X509Certificate(inter.der);
    const pr = new px509.X509Certificate(root);
    assert.equal(
      pi.getExtension(px509.AuthorityKeyIdentifierExtension)?.keyId,
      pr.getExtension(px509.SubjectKeyIdentifierExtension)?.keyId,
    );
    const leaf = issueX509SvidSync({
      ca: { certDer: inter.der, key },
      subjectPublicKey: createPublicKey(ecKey()),
      spiffeId: 'spiffe://example.org/w',
      notBefore: now - 10_000,
      notAfter: now + HOUR,
    });
    assert.match(opensslVerify(leaf.der, [root], [inter.der], now), /: OK/);
    assert.match(opensslVerify(inter.der, [root], [], now), /: OK/);
  });

  it('loadUpstreamCa rejects a key that does not match, a non-CA cert and garbage', () => {
    const a = upstreamPem();
    const b = upstreamPem();
    assert.throws(() => loadUpstreamCa(a.cert, b.key), /does not match/);
    assert.throws(() => loadUpstreamCa('nothing', a.key), /no CERTIFICATE/);
    assert.throws(() => loadUpstreamCa(a.cert, 'junk'), /private key/);
    const leafish = openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        'k.pem',
        '-out',
        'c.pem',
        '-subj',
        '/O=x',
        '-addext',
        'basicConstraints=critical,CA:FALSE',
      ],
      {},
      ['k.pem', 'c.pem'],
    );
    assert.throws(() => loadUpstreamCa(leafish, leafish), /not a CA/);
  });
});

describe('PEM helpers', () => {
  it('round-trips and rejects bad base64', async () => {
    const ca = await makeCa();
    const pem = derToPem(ca.certDer) + derToPem(ca.certDer);
    assert.deepEqual(pemToDers(pem), [ca.certDer, ca.certDer]);
    assert.throws(
      () => pemToDers('-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----'),
      /base64/,
    );
    assert.deepEqual(pemToDers('-----BEGIN X-----\nAAAA\n-----END X-----'), []);
  });
});
