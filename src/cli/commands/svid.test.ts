// bundle show, x509 mint and jwt mint, checked with independent verifiers (openssl, jose).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose';
import { startTestServer, type TestServer } from '../testing/harness.ts';

let s: TestServer;
let out: string;

before(async () => {
  s = await startTestServer();
  out = mkdtempSync(path.join(tmpdir(), 'tessera-cli-out-'));
});
after(async () => {
  await s.stop();
  rmSync(out, { recursive: true, force: true });
});

const certs = (pem: string) =>
  [...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g)].map(
    (m) => new X509Certificate(m[0]),
  );

describe('bundle show', () => {
  test('pem: the CA certificates', async () => {
    const r = await s.cli('bundle', 'show');
    assert.equal(r.code, 0, r.stderr);
    const cas = certs(r.stdout);
    assert.ok(cas.length >= 1);
    for (const ca of cas) assert.equal(ca.ca, true);
  });

  test('spiffe: a JWK set with x509-svid and jwt-svid keys', async () => {
    const r = await s.cli('bundle', 'show', '--format', 'spiffe');
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    const uses = new Set(doc.keys.map((k: { use: string }) => k.use));
    assert.deepEqual([...uses].sort(), ['jwt-svid', 'x509-svid']);
    assert.equal(typeof doc.spiffe_sequence, 'number');
    assert.equal(typeof doc.spiffe_refresh_hint, 'number');
  });

  test('--output json: PEM per authority', async () => {
    const doc = JSON.parse((await s.cli('bundle', 'show', '--output', 'json')).stdout);
    assert.equal(doc.trustDomain, 'example.org');
    assert.match(doc.x509Authorities[0].certificatePem, /^-----BEGIN CERTIFICATE-----/);
    assert.match(doc.jwtAuthorities[0].publicKeyPem, /^-----BEGIN PUBLIC KEY-----/);
  });
});

describe('x509 mint', () => {
  test('writes svid.pem, svid.key (0600) and bundle.pem that openssl verifies', async () => {
    const dir = path.join(out, 'x509');
    const r = await s.cli(
      'x509',
      'mint',
      '--spiffe-id',
      'spiffe://example.org/db',
      '--dns',
      'db.example.org',
      '--ttl',
      '10m',
      '--write',
      dir,
      '--output',
      'json',
    );
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout);
    assert.equal(res.spiffeId, 'spiffe://example.org/db');
    assert.equal(res.files.key, path.join(dir, 'svid.key'));
    assert.equal(statSync(path.join(dir, 'svid.key')).mode & 0o777, 0o600);
    const [leaf] = certs(readFileSync(path.join(dir, 'svid.pem'), 'utf8'));
    assert.ok(leaf);
    assert.match(leaf.subjectAltName ?? '', /URI:spiffe:\/\/example\.org\/db/);
    assert.match(leaf.subjectAltName ?? '', /DNS:db\.example\.org/);
    const key = readFileSync(path.join(dir, 'svid.key'), 'utf8');
    assert.match(key, /^-----BEGIN PRIVATE KEY-----/);
    assert.ok(leaf.checkPrivateKey((await import('node:crypto')).createPrivateKey(key)));
    const v = spawnSync(
      'openssl',
      ['verify', '-CAfile', path.join(dir, 'bundle.pem'), path.join(dir, 'svid.pem')],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(v.status, 0, v.stdout + v.stderr);
  });

  test('--write is required; a foreign SPIFFE ID is refused', async () => {
    const r = await s.cli('x509', 'mint', '--spiffe-id', 'spiffe://example.org/db');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--write/);
    const foreign = await s.cli(
      'x509',
      'mint',
      '--spiffe-id',
      'spiffe://other.org/db',
      '--write',
      path.join(out, 'f'),
    );
    assert.notEqual(foreign.code, 0);
    assert.match(foreign.stderr, /^error: /);
  });
});

describe('jwt mint', () => {
  test('the token verifies against the JWKS from bundle show --format spiffe', async () => {
    const r = await s.cli(
      'jwt',
      'mint',
      '--spiffe-id',
      'spiffe://example.org/api',
      '--audience',
      'aud1',
      'aud2',
      '--ttl',
      '5m',
    );
    assert.equal(r.code, 0, r.stderr);
    const token = r.stdout.split('\n')[0] ?? '';
    assert.match(r.stderr, /^expires at: /);
    const bundle = JSON.parse((await s.cli('bundle', 'show', '--format', 'spiffe')).stdout);
    const { kid, alg } = decodeProtectedHeader(token);
    const jwk = bundle.keys.find(
      (k: { use: string; kid?: string }) => k.use === 'jwt-svid' && k.kid === kid,
    );
    assert.ok(jwk, `kid ${kid} in the bundle`);
    // SPIFFE marks keys use "jwt-svid", which jose refuses: strip it before importing.
    const { use: _use, ...plain } = jwk as JWK;
    const key = await importJWK(plain, alg);
    const { payload } = await jwtVerify(token, key, { audience: 'aud2' });
    assert.equal(payload.sub, 'spiffe://example.org/api');
    assert.ok(payload.exp && payload.iat && payload.exp - payload.iat === 300);
  });

  test('--output json', async () => {
    const r = await s.cli(
      'jwt',
      'mint',
      '--spiffe-id',
      'spiffe://example.org/api',
      '--audience',
      'a',
      '--output',
      'json',
    );
    const j = JSON.parse(r.stdout);
    assert.equal(j.token.split('.').length, 3);
    assert.deepEqual(j.audience, ['a']);
    assert.match(j.expiresAt, /Z$/);
  });
});
