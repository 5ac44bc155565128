import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { decodeProtectedHeader, importSPKI, jwtVerify } from 'jose';
import { createCredentialProvider } from '../catalog.ts';
import { MemorySecrets, deps, record, request } from '../testing/fakes.ts';

const NOW = 1_800_000_000_000;

function keyPair(kind: 'rsa' | 'p256' | 'p384' | 'ed25519') {
  const k =
    kind === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : kind === 'ed25519'
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('ec', { namedCurve: kind === 'p256' ? 'P-256' : 'P-384' });
  return {
    privatePem: k.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    publicPem: k.publicKey.export({ type: 'spki', format: 'pem' }) as string,
  };
}

function provider(config: Record<string, unknown>, secrets: MemorySecrets) {
  return createCredentialProvider(
    record('signed-jwt', { private_key: 'app-key', ...config }, 'gh-app'),
    deps({ secrets, now: () => NOW }),
  );
}

describe('signed-jwt', () => {
  for (const [kind, alg] of [
    ['rsa', 'RS256'],
    ['p256', 'ES256'],
    ['p384', 'ES384'],
    ['ed25519', 'EdDSA'],
  ] as const) {
    it(`signs with a ${kind} key as ${alg}, the alg taken from the key`, async () => {
      const { privatePem, publicPem } = keyPair(kind);
      const s = new MemorySecrets().set('app-key', privatePem);
      const c = await provider({ claims: { iss: 'me' }, kid: 'key-1' }, s).release(request());
      const token = c.value.kind === 'token' ? c.value.token : '';
      assert.deepEqual(decodeProtectedHeader(token), { alg, typ: 'JWT', kid: 'key-1' });
      const { payload } = await jwtVerify(token, await importSPKI(publicPem, alg), {
        currentDate: new Date(NOW),
      });
      assert.equal(payload.iss, 'me');
    });
  }

  it('renders the claims template and adds iat, exp, jti (GitHub App example)', async () => {
    const { privatePem, publicPem } = keyPair('rsa');
    const s = new MemorySecrets().set('app-key', privatePem);
    const p = provider(
      {
        claims: {
          iss: '123456',
          sub: '{{client.spiffe_id}}',
          td: '{{client.trust_domain}}',
          path: '{{client.path}}',
          aud: ['{{server.name}}', 'https://{{server.host}}:{{server.port}}/'],
          port: '{{server.port}}',
          nested: { at: '{{now}}', policy: 'p={{ policy }}', literal: true, n: 3 },
        },
        ttl: '10m',
        iat_backdate: 60,
      },
      s,
    );
    const c = await p.release(request());
    const token = c.value.kind === 'token' ? c.value.token : '';
    const { payload } = await jwtVerify(token, await importSPKI(publicPem, 'RS256'), {
      currentDate: new Date(NOW),
    });
    const now = NOW / 1000;
    assert.equal(payload.iss, '123456');
    assert.equal(payload.sub, 'spiffe://example.org/ns/prod/sa/web');
    assert.equal(payload.td, 'example.org');
    assert.equal(payload.path, '/ns/prod/sa/web');
    assert.deepEqual(payload.aud, ['orders-api', 'https://orders.internal:8443/']);
    assert.equal(payload.port, 8443);
    assert.deepEqual(payload.nested, { at: now, policy: 'p=web-to-orders', literal: true, n: 3 });
    assert.equal(payload.iat, now - 60);
    assert.equal(payload.exp, now + 600);
    assert.match(String(payload.jti), /^[0-9a-f-]{36}$/);
    assert.equal(c.expiresAt, NOW + 600_000);
    const again = await p.release(request());
    assert.notEqual(
      again.value.kind === 'token' && again.value.token,
      token,
      'a fresh jti each time',
    );
  });

  it('a secret that is not a usable private key is a precondition failure', async () => {
    const s = new MemorySecrets().set('app-key', 'not a key');
    await assert.rejects(provider({}, s).release(request()), {
      name: 'FailedPreconditionError',
      message: 'credential provider "gh-app": secret "app-key" is not a PEM private key',
    });
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    s.set('app-key', small.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    await assert.rejects(provider({}, s).release(request()), {
      name: 'FailedPreconditionError',
      message: /RSA keys need at least 2048 bits/,
    });
    const { publicPem } = keyPair('p256');
    s.set('app-key', publicPem);
    await assert.rejects(provider({}, s).release(request()), { name: 'FailedPreconditionError' });
  });
});
