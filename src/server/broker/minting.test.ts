// CredentialMinting over the real minter: JWT-SVIDs and RFC 9068 access tokens of the client,
// TTLs capped, bad input refused.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { ManualClock } from '../../core/clock.ts';
import { MemoryKeyManager } from '../../crypto/keys/memory-key-manager.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/types.ts';
import { Auditor } from '../audit/auditor.ts';
import { createAuthorityFactory } from '../authority/authority-factory.ts';
import { AuthorityManager } from '../authority/authority-manager.ts';
import { Minter } from '../svid/minter.ts';
import { credentialMinting } from './minting.ts';

const HOUR = 3_600_000;
const T0 = Date.UTC(2030, 0, 1);
const ID = 'spiffe://example.org/web';
let dir = '';
let store: Store;
let minting: ReturnType<typeof credentialMinting>;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tessera-minting-'));
  const clock = new ManualClock(T0);
  store = await openStore({ kind: 'sqlite', path: path.join(dir, 'db.sqlite3') }, clock);
  const keys = new MemoryKeyManager();
  const authorities = await AuthorityManager.create({
    store,
    keys,
    factory: createAuthorityFactory({
      keys,
      trustDomain: 'example.org',
      x509: { keyType: 'ec-p256', ttlMs: HOUR, upstream: null },
      jwt: { keyType: 'ec-p256', ttlMs: HOUR },
    }),
    auditor: new Auditor(clock, store),
    clock,
    serverId: 'server-a',
    trustDomain: 'example.org',
    refreshHintSeconds: 360,
  });
  const minter = new Minter({ authorities, clock, issuer: 'https://tessera.test' });
  minting = credentialMinting(minter, { maxJwtTtlMs: 300_000, maxAccessTokenTtlMs: 600_000 });
});
after(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

it('a JWT-SVID of the client for the audience, its TTL capped', async () => {
  const { token, expiresAt } = await minting.jwtSvid(ID, ['api'], 86_400);
  const claims = decodeJwt(token);
  assert.equal(claims.sub, ID);
  assert.deepEqual(claims.aud, ['api']);
  assert.equal(expiresAt, T0 + 300_000);
});

it('an RFC 9068 access token whose subject and client are the workload', async () => {
  const { token, expiresAt } = await minting.accessToken(ID, 'https://api.test', ['read'], 60);
  assert.equal(decodeProtectedHeader(token).typ, 'at+jwt');
  const claims = decodeJwt(token);
  assert.equal(claims.sub, ID);
  assert.equal(claims.client_id, ID);
  assert.equal(claims.aud, 'https://api.test');
  assert.equal(claims.scope, 'read');
  assert.equal(expiresAt, T0 + 60_000);
  assert.equal((await minting.accessToken(ID, 'a', [], 86_400)).expiresAt, T0 + 600_000);
});

it('bad input is refused', async () => {
  await assert.rejects(minting.jwtSvid(ID, ['api'], 0), { name: 'InvalidArgumentError' });
  await assert.rejects(minting.accessToken('not-an-id', 'a', [], 60), {
    name: 'InvalidArgumentError',
  });
  await assert.rejects(minting.accessToken(ID, 'a', ['bad scope'], 60), {
    message: 'scopes: "bad scope" is not an OAuth scope token',
  });
  await assert.rejects(minting.accessToken(ID, '', [], 60), { name: 'InvalidArgumentError' });
});
