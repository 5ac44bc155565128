import assert from 'node:assert/strict';
import { X509Certificate, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { ManualClock } from '../../core/clock.ts';
import { MemoryKeyManager } from '../../crypto/keys/memory-key-manager.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import { Auditor } from '../audit/auditor.ts';
import { createAuthorityFactory } from '../authority/authority-factory.ts';
import { AuthorityManager } from '../authority/authority-manager.ts';
import {
  MAX_AUDIENCES,
  MAX_AUDIENCE_BYTES,
  Minter,
  NOT_BEFORE_SKEW_MS,
  checkAudience,
} from './minter.ts';

const TD = 'example.org';
const HOUR = 3_600_000;
const T0 = Date.UTC(2030, 0, 1);
const ID = 'spiffe://example.org/web';

let dir = '';
let store: Store;
let clock: ManualClock;
let authorities: AuthorityManager;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tessera-minter-'));
  clock = new ManualClock(T0);
  store = await openStore({ kind: 'sqlite', path: path.join(dir, 'db.sqlite3') }, clock);
  const keys = new MemoryKeyManager();
  authorities = await AuthorityManager.create({
    store,
    keys,
    factory: createAuthorityFactory({
      keys,
      trustDomain: TD,
      x509: { keyType: 'ec-p256', ttlMs: HOUR, upstream: null },
      jwt: { keyType: 'ec-p256', ttlMs: HOUR },
    }),
    auditor: new Auditor(clock, store),
    clock,
    serverId: 'server-a',
    trustDomain: TD,
    refreshHintSeconds: 360,
  });
});

after(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

const leafKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;

function minter(issuer = ''): Minter {
  return new Minter({ authorities, clock, issuer });
}

describe('Minter.x509', () => {
  it('issues a leaf for the SPIFFE ID, signed by the active CA, with the chain', async () => {
    clock.set(T0);
    const svid = await minter().x509(ID, leafKey, 600_000, ['web.example.org']);
    assert.equal(svid.spiffeId, ID);
    assert.equal(svid.expiresAt, T0 + 600_000);
    assert.equal(svid.chainDer.length, 2);
    const leaf = new X509Certificate(Buffer.from(svid.chainDer[0] as Uint8Array));
    const ca = new X509Certificate(Buffer.from(svid.chainDer[1] as Uint8Array));
    assert.deepEqual(svid.chainDer[1], authorities.activeX509().authority.certChainDer[0]);
    assert.ok(leaf.verify(ca.publicKey));
    assert.ok(leaf.publicKey.equals(leafKey));
    assert.equal(leaf.subjectAltName, `URI:${ID}, DNS:web.example.org`);
    assert.equal(leaf.serialNumber.toLowerCase(), svid.serialHex.toLowerCase());
    assert.equal(Date.parse(leaf.validFrom), T0 - NOT_BEFORE_SKEW_MS);
    assert.equal(Date.parse(leaf.validTo), T0 + 600_000);
  });

  it('caps the TTL at the authority notAfter', async () => {
    const { notAfter } = authorities.activeX509().authority;
    clock.set(notAfter - 5 * 60_000);
    const svid = await minter().x509(ID, leafKey, HOUR, []);
    assert.equal(svid.expiresAt, notAfter);
    const leaf = new X509Certificate(Buffer.from(svid.chainDer[0] as Uint8Array));
    assert.equal(Date.parse(leaf.validTo), notAfter);
    clock.set(T0);
  });

  it('rejects a trust-domain ID', async () => {
    clock.set(T0);
    await assert.rejects(minter().x509('spiffe://example.org', leafKey, HOUR, []), {
      name: 'InvalidArgumentError',
    });
  });
});

describe('Minter.jwt', () => {
  it('signs claims and header as SPIRE does, verifiable with the bundle key', async () => {
    clock.set(T0 + 1234);
    const svid = await minter().jwt(ID, ['svc-a', 'svc-b'], 300_000);
    const header = decodeProtectedHeader(svid.token);
    const active = authorities.activeJwt().authority;
    assert.deepEqual(header, { alg: 'ES256', kid: active.id, typ: 'JWT' });
    const claims = decodeJwt(svid.token);
    assert.deepEqual(claims, {
      sub: ID,
      aud: ['svc-a', 'svc-b'],
      exp: Math.floor((T0 + 1234 + 300_000) / 1000),
      iat: Math.floor((T0 + 1234) / 1000),
    });
    assert.equal(svid.expiresAt, (claims.exp as number) * 1000);
    assert.equal(svid.spiffeId, ID);

    const bundle = await store.bundles.get(TD);
    const key = bundle?.jwtAuthorities.find((k) => k.kid === header.kid);
    assert.ok(key, 'the signing key is in the bundle');
    const publicKey = createPublicKey({
      key: Buffer.from(key.publicKeyDer),
      format: 'der',
      type: 'spki',
    });
    const verified = await jwtVerify(svid.token, publicKey, {
      audience: 'svc-b',
      currentDate: new Date(T0 + 2000),
    });
    assert.equal(verified.payload.sub, ID);
  });

  it('keeps a single audience as an array', async () => {
    clock.set(T0);
    const svid = await minter().jwt(ID, ['only'], 60_000);
    assert.deepEqual(decodeJwt(svid.token).aud, ['only']);
  });

  it('sets iss when an issuer is configured', async () => {
    clock.set(T0);
    const svid = await minter('https://oidc.example.org').jwt(ID, ['a'], 60_000);
    assert.equal(decodeJwt(svid.token).iss, 'https://oidc.example.org');
  });

  it('caps exp at the authority notAfter', async () => {
    const { notAfter } = authorities.activeJwt().authority;
    clock.set(notAfter - 120_000);
    const svid = await minter().jwt(ID, ['a'], HOUR);
    assert.equal(decodeJwt(svid.token).exp, Math.floor(notAfter / 1000));
    assert.ok(svid.expiresAt <= notAfter);
    clock.set(T0);
  });

  it('validates the SPIFFE ID and the audience', async () => {
    clock.set(T0);
    await assert.rejects(minter().jwt('spiffe://example.org', ['a'], 60_000), {
      name: 'InvalidArgumentError',
      message:
        'invalid spiffe_id "spiffe://example.org": a leaf SVID needs a path (the trust domain ID is reserved for CAs)',
    });
    await assert.rejects(minter().jwt(ID, [], 60_000), {
      name: 'InvalidArgumentError',
      message: 'audience: at least one audience is required',
    });
  });
});

describe('Minter.accessToken', () => {
  it('signs an RFC 9068 access token with the active JWT authority, DPoP-bound when asked', async () => {
    clock.set(T0 + 5678);
    const issuer = 'https://oidc.example.org';
    const t = await minter(issuer).accessToken({
      subject: 'repo:octo/app',
      audience: 'https://api.example.org',
      clientId: 'deploy',
      scopes: ['read', 'write'],
      jkt: 'thumbprint',
      ttlMs: 300_000,
    });
    const active = authorities.activeJwt().authority;
    assert.deepEqual(decodeProtectedHeader(t.token), {
      alg: 'ES256',
      kid: active.id,
      typ: 'at+jwt',
    });
    const { jti, ...claims } = decodeJwt(t.token);
    assert.equal(typeof jti, 'string');
    assert.deepEqual(claims, {
      iss: issuer,
      sub: 'repo:octo/app',
      aud: 'https://api.example.org',
      client_id: 'deploy',
      scope: 'read write',
      iat: Math.floor((T0 + 5678) / 1000),
      exp: Math.floor((T0 + 5678 + 300_000) / 1000),
      cnf: { jkt: 'thumbprint' },
    });
    assert.equal(t.expiresAt, (claims.exp as number) * 1000);
    assert.equal(t.issuedAt, T0 + 5678);
    const plain = decodeJwt(
      (
        await minter(issuer).accessToken({
          subject: 's',
          audience: 'a',
          clientId: 'c',
          scopes: [],
          ttlMs: 60_000,
        })
      ).token,
    );
    assert.equal(plain.scope, undefined);
    assert.equal(plain.cnf, undefined);
  });
});

describe('checkAudience', () => {
  it('accepts 1..32 values of 1..1024 bytes', () => {
    checkAudience(['a']);
    checkAudience(Array.from({ length: MAX_AUDIENCES }, (_, i) => `aud-${i}`));
    checkAudience(['x'.repeat(MAX_AUDIENCE_BYTES)]);
  });

  it('rejects an empty list, too many values and bad values', () => {
    assert.throws(() => checkAudience([]), {
      name: 'InvalidArgumentError',
      message: 'audience: at least one audience is required',
    });
    assert.throws(() => checkAudience(Array.from({ length: 33 }, (_, i) => `a${i}`)), {
      name: 'InvalidArgumentError',
      message: 'audience: at most 32 values',
    });
    for (const bad of [[''], ['ok', 'x'.repeat(1025)], ['é'.repeat(513)]]) {
      assert.throws(() => checkAudience(bad), {
        name: 'InvalidArgumentError',
        message: 'audience: each value must be 1..1024 bytes',
      });
    }
  });
});
