import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../../core/errors.ts';
import { bitString, nul, oid, seq } from '../der/der-writer.ts';
import { children, raw, readRoot } from '../der/der-reader.ts';
import { createCsr } from './csr-create.ts';
import { parseCsr, parseCsrAsync } from './csr.ts';
import { pemToDers } from './pem.ts';
import { ecKey, openssl } from './testing/ca.ts';

/** Rebuilds a CSR with parts swapped, to forge bad ones. */
function rebuild(
  csr: Uint8Array,
  f: { info?: Uint8Array; alg?: Uint8Array; sig?: Uint8Array },
): Uint8Array {
  const [info, alg, sig] = children(csr, readRoot(csr));
  return new Uint8Array(
    seq(f.info ?? raw(csr, info!), f.alg ?? raw(csr, alg!), f.sig ?? raw(csr, sig!)),
  );
}

describe('parseCsr', () => {
  it('parses and verifies CSRs for every supported key kind', () => {
    const keys = [
      ecKey('P-256'),
      ecKey('P-384'),
      ecKey('P-521'),
      generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
      generateKeyPairSync('ed25519').privateKey,
    ];
    for (const k of keys) {
      const csr = parseCsr(createCsr(k, 'spiffe://example.org/w', { dnsNames: ['w.example.org'] }));
      assert.deepEqual(csr.uriSans, ['spiffe://example.org/w']);
      assert.deepEqual(csr.dnsNames, ['w.example.org']);
      assert.deepEqual(
        Buffer.from(csr.publicKeyDer),
        csr.publicKey.export({ type: 'spki', format: 'der' }),
      );
    }
  });

  it('parses a CSR made by openssl', () => {
    const out = openssl(
      [
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        'k.pem',
        '-out',
        'r.pem',
        '-subj',
        '/O=x',
        '-addext',
        'subjectAltName=URI:spiffe://example.org/o',
      ],
      {},
      ['r.pem'],
    );
    const der = pemToDers(out, 'CERTIFICATE REQUEST')[0]!;
    assert.deepEqual(parseCsr(der).uriSans, ['spiffe://example.org/o']);
  });

  it('a CSR without SANs yields empty lists', async () => {
    const csr = await parseCsrAsync(createCsr(ecKey()));
    assert.deepEqual(csr.uriSans, []);
    assert.deepEqual(csr.dnsNames, []);
  });

  it('rejects a CSR whose signature comes from another key', async () => {
    const good = createCsr(ecKey(), 'spiffe://example.org/w');
    const other = createCsr(ecKey(), 'spiffe://example.org/w');
    const [, , otherSig] = children(other, readRoot(other));
    const forged = rebuild(good, { sig: raw(other, otherSig!) });
    assert.throws(() => parseCsr(forged), /signature does not verify/);
    await assert.rejects(parseCsrAsync(forged), /signature does not verify/);
  });

  it('rejects garbage, truncated, empty and oversized input with InvalidArgumentError', () => {
    const good = createCsr(ecKey(), 'spiffe://example.org/w');
    const cases: Array<[Uint8Array, RegExp]> = [
      [new Uint8Array(0), /empty/],
      [Uint8Array.from({ length: 200 }, (_, i) => (i * 37) & 0xff), /invalid CSR/],
      [good.subarray(0, good.length - 5), /malformed DER/],
      [good.subarray(0, 10), /malformed DER/],
      [new Uint8Array([...good, 0]), /trailing/],
      [new Uint8Array(20_000), /larger than 16384/],
    ];
    for (const [bytes, re] of cases) {
      assert.throws(
        () => parseCsr(bytes),
        (e) => e instanceof InvalidArgumentError && re.test(e.message),
      );
    }
    assert.throws(() => parseCsr(good, 100), /larger than 100 bytes/);
    assert.throws(() => parseCsr('nope' as unknown as Uint8Array), /expected DER bytes/);
  });

  it('rejects every single-byte corruption without throwing anything but InvalidArgumentError', () => {
    const good = createCsr(ecKey(), 'spiffe://example.org/w');
    for (let i = 0; i < good.length; i++) {
      const bad = Uint8Array.from(good);
      bad[i] = (bad[i] as number) ^ 0x41;
      assert.throws(() => parseCsr(bad), InvalidArgumentError, `byte ${i}`);
    }
  });

  it('rejects unsupported signature algorithms and alg/key mismatches', () => {
    const good = createCsr(ecKey(), 'spiffe://example.org/w');
    // RSASSA-PSS is not accepted
    assert.throws(
      () => parseCsr(rebuild(good, { alg: seq(oid('1.2.840.113549.1.1.10')) })),
      /unsupported signature algorithm 1\.2\.840\.113549\.1\.1\.10/,
    );
    // an RSA algorithm on an EC key
    assert.throws(
      () => parseCsr(rebuild(good, { alg: seq(oid('1.2.840.113549.1.1.11'), nul()) })),
      /needs a rsa key/,
    );
    // SHA-1 ECDSA is not accepted
    assert.throws(
      () => parseCsr(rebuild(good, { alg: seq(oid('1.2.840.10045.4.1')) })),
      /unsupported signature algorithm/,
    );
    assert.throws(
      () => parseCsr(rebuild(good, { sig: bitString(new Uint8Array(0)) })),
      /signature does not verify/,
    );
  });

  it('rejects small RSA keys and unsupported key algorithms', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    assert.throws(() => parseCsr(createCsr(small)), /at least 2048 bits/);
    const out = openssl(
      [
        'req',
        '-new',
        '-newkey',
        'ed448',
        '-nodes',
        '-keyout',
        'k.pem',
        '-out',
        'r.pem',
        '-subj',
        '/O=x',
      ],
      {},
      ['r.pem'],
    );
    assert.throws(
      () => parseCsr(pemToDers(out, 'CERTIFICATE REQUEST')[0]!),
      /unsupported public key algorithm/,
    );
  });
});
