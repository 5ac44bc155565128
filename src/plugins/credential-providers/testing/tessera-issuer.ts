// Tessera's side of cloud federation, for tests: JWT-SVIDs signed by the server's own JWT-SVID
// signing (crypto/jwt/sign.ts) with a key from the memory key manager, and the OIDC discovery
// document and JWKS the clouds fetch to verify them, served on 127.0.0.1. `failJwks` makes the
// JWKS answer 500 (the cloud cannot fetch keys).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KeyType } from '../../../core/authority.ts';
import { publicJwk, jwsAlgForKey } from '../../../crypto/jwk.ts';
import { signJwtSvid } from '../../../crypto/jwt/sign.ts';
import { MemoryKeyManager } from '../../../crypto/keys/memory-key-manager.ts';
import type { CredentialMinting } from '../credential-provider.ts';

export interface TesseraIssuer extends CredentialMinting {
  readonly issuer: string;
  readonly jwksUrl: string;
  /** JWT-SVIDs minted so far. */
  minted: number;
  failJwks: boolean;
  close(): Promise<void>;
}

export interface IssuerOptions {
  readonly keyType?: KeyType;
  readonly now?: () => number;
  /** Signs with this `iss` instead of the served issuer (a token from elsewhere). */
  readonly claimedIssuer?: string;
}

/** A minting that signs with a key nobody publishes (a forged token, same kid). */
export async function foreignMinting(issuer: string, keyType: KeyType = 'ec-p256') {
  const key = await new MemoryKeyManager().generate('foreign', keyType);
  return mintingWith(
    key,
    () => issuer,
    () => Date.now(),
    { minted: 0 },
  );
}

function mintingWith(
  key: Awaited<ReturnType<MemoryKeyManager['generate']>>,
  issuer: () => string,
  now: () => number,
  counter: { minted: number },
): CredentialMinting {
  return {
    async jwtSvid(spiffeId, audience, ttlSeconds) {
      const iat = Math.floor(now() / 1000);
      const exp = iat + ttlSeconds;
      const token = await signJwtSvid({
        key,
        kid: 'k1',
        claims: { sub: spiffeId, aud: [...audience], iat, exp, iss: issuer() },
      });
      counter.minted++;
      return { token, expiresAt: exp * 1000 };
    },
    accessToken: () => Promise.reject(new Error('access tokens are not used by cloud providers')),
  };
}

export async function startTesseraIssuer(o: IssuerOptions = {}): Promise<TesseraIssuer> {
  const key = await new MemoryKeyManager().generate('jwt-1', o.keyType ?? 'ec-p256');
  let base = '';
  const state = { minted: 0, failJwks: false };
  const server = http.createServer((req, res) => {
    const json = (status: number, body: unknown) =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (req.url === '/.well-known/openid-configuration') {
      json(200, {
        issuer: base,
        jwks_uri: `${base}/keys`,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: [jwsAlgForKey(key.publicKey)],
      });
    } else if (req.url === '/keys') {
      if (state.failJwks) json(500, { error: 'unavailable' });
      else
        json(200, {
          keys: [
            {
              ...publicJwk(key.publicKey),
              kid: 'k1',
              use: 'sig',
              alg: jwsAlgForKey(key.publicKey),
            },
          ],
        });
    } else json(404, {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const minting = mintingWith(key, () => o.claimedIssuer ?? base, o.now ?? Date.now, state);
  return {
    ...minting,
    issuer: base,
    jwksUrl: `${base}/keys`,
    get minted() {
      return state.minted;
    },
    set minted(v: number) {
      state.minted = v;
    },
    get failJwks() {
      return state.failJwks;
    },
    set failJwks(v: boolean) {
      state.failJwks = v;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
