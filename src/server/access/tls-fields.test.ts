// The TLS fields of a server workload: https implies tls, the CA parses as PEM certificates.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { derToPem } from '../../crypto/x509/pem.ts';
import { makeCa } from '../../crypto/x509/testing/ca.ts';
import { checkTls, MAX_TLS_CA_BYTES } from './tls-fields.ts';

const off = { tls: false, tlsCa: '', tlsDecrypt: false };
let pem = '';

describe('server workload TLS fields', () => {
  before(async () => {
    pem = derToPem((await makeCa()).certDer);
  });

  it('https implies tls; plain protocols keep what they are given', () => {
    assert.deepEqual(checkTls('', 'https', off), { ...off, tls: true });
    assert.deepEqual(checkTls('', 'postgres', off), off);
    assert.deepEqual(checkTls('', 'postgres', { ...off, tls: true }), { ...off, tls: true });
  });

  it('keeps a CA as its re-encoded certificates', () => {
    const out = checkTls('', 'https', { ...off, tlsCa: `\n${pem}\n${pem}` });
    assert.equal(out.tlsCa.match(/BEGIN CERTIFICATE/g)?.length, 2);
    assert.equal(out.tlsCa.trim().startsWith('-----BEGIN CERTIFICATE-----'), true);
  });

  it('refuses a CA that is not certificates, too large, or without tls', () => {
    const t =
      (tlsCa: string, protocol: 'https' | 'tcp' = 'https') =>
      () =>
        checkTls('server_workloads[0].', protocol, { ...off, tlsCa });
    assert.throws(t('hello'), {
      message: 'server_workloads[0].tls_ca: holds no PEM certificate (-----BEGIN CERTIFICATE-----)',
    });
    assert.throws(t(`${pem}junk`), {
      message: 'server_workloads[0].tls_ca: holds text outside its PEM certificates',
    });
    assert.throws(t('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'), {
      message: 'server_workloads[0].tls_ca: block 1 is a PRIVATE KEY, not a CERTIFICATE',
    });
    assert.throws(t('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), {
      message: /^server_workloads\[0\]\.tls_ca: certificate 1 does not parse/,
    });
    assert.throws(t('x'.repeat(MAX_TLS_CA_BYTES + 1)), {
      message: `server_workloads[0].tls_ca: larger than ${MAX_TLS_CA_BYTES} bytes`,
    });
    assert.throws(t(pem, 'tcp'), {
      message: 'server_workloads[0].tls_ca: needs tls: a CA is only used to verify TLS',
    });
  });

  it('tls_decrypt only for http and https; cloud targets take no TLS settings', () => {
    assert.deepEqual(checkTls('', 'http', { ...off, tlsDecrypt: true }), {
      ...off,
      tlsDecrypt: true,
    });
    assert.throws(() => checkTls('', 'postgres', { ...off, tlsDecrypt: true }), {
      message: 'tls_decrypt: only http and https can be decrypted, not postgres',
    });
    assert.throws(() => checkTls('', 'aws', { ...off, tls: true }), {
      message: 'tls: aws server workloads take no TLS settings: the cloud SDK talks to the agent',
    });
  });
});
