import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import {
  type JwksServer,
  type TokenSigner,
  serveJwks,
  signToken,
  tokenSigner,
} from '../../../test/helpers/cloud-tokens.ts';
import { JwksSource, jwksUrl, verifyCloudJwt } from './cloud-jwt.ts';
import { metadataRequest } from './metadata-http.ts';

let signer: TokenSigner;
let jwks: JwksServer;
before(async () => {
  signer = tokenSigner('k1');
  jwks = await serveJwks([signer]);
});
after(() => jwks.close());

const check = (token: string, keys = new JwksSource({ url: new URL(jwks.url), now: Date.now })) =>
  verifyCloudJwt(token, { what: 'test', keys, now: Date.now(), issuers: ['iss'], audience: 'aud' });

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

/** A server answering every request with `size` bytes. */
async function huge(size: number): Promise<{ url: string; close: () => void }> {
  const s = http.createServer((_q, r) => r.end(Buffer.alloc(size, 0x20)));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(s.address() as { port: number }).port}/`,
    close: () => {
      s.closeAllConnections();
      s.close();
    },
  };
}

describe('cloud JWT verification', () => {
  it('accepts a valid token and refuses alg none, a header alg its key does not fit, a missing exp', async () => {
    const claims = await check(await signToken(signer, { iss: 'iss', aud: ['x', 'aud'] }));
    assert.equal(claims.iss, 'iss');
    const payload = b64({ iss: 'iss', aud: 'aud', exp: Date.now() / 1000 + 60 });
    await assert.rejects(check(`${b64({ alg: 'none', kid: 'k1' })}.${payload}.AA`), {
      message: 'test: token algorithm "none" is not allowed',
    });
    await assert.rejects(check(`${b64({ alg: 'ES256', kid: 'k1' })}.${payload}.AA`), {
      message: 'test: token algorithm ES256 does not match its key',
    });
    await assert.rejects(
      check(await signToken(signer, { iss: 'iss', aud: 'aud', exp: undefined })),
      {
        message: 'test: token has no exp',
      },
    );
  });

  it('refuses a JWKS or metadata response past its size bound, naming the endpoint', async () => {
    const big = await huge(300 * 1024);
    try {
      const keys = new JwksSource({ url: new URL(big.url), now: Date.now });
      await assert.rejects(check(await signToken(signer, { iss: 'iss', aud: 'aud' }), keys), {
        name: 'UnavailableError',
        message: `JWKS ${big.url.slice(0, -1)}/: larger than 262144 bytes`,
      });
      await assert.rejects(metadataRequest('IMDS', new URL(big.url)), {
        name: 'UnavailableError',
        message: `IMDS: ${big.url}: response larger than 65536 bytes`,
      });
    } finally {
      big.close();
    }
  });

  it('takes JWKS URLs over https, or http only to loopback', () => {
    assert.equal(
      jwksUrl('https://www.googleapis.com/oauth2/v3/certs', 'u').host,
      'www.googleapis.com',
    );
    assert.equal(jwksUrl('http://127.0.0.1:1/k', 'u').port, '1');
    assert.throws(() => jwksUrl('http://keys.example.com/k', 'u'), {
      message: 'u: "http://keys.example.com/k" must be https (http only to loopback)',
    });
  });
});
