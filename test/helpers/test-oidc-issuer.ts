// A stand-in external OIDC issuer (GitHub Actions) for token-exchange tests: a P-256 key and the
// JWKS file the server is configured to trust, plus the RFC 8693 constants the tests share.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
export const AT_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
export const GH_AUD = 'https://github.com/octo-org';

export interface TestIssuer {
  readonly dir: string;
  readonly jwksFile: string;
  readonly signingKey: KeyObject;
  readonly publicKey: KeyObject;
}

export function testIssuer(): TestIssuer {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-oidc-issuer-'));
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'gh-1', use: 'sig', alg: 'ES256' };
  const jwksFile = path.join(dir, 'github-jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [jwk] }));
  return { dir, jwksFile, signingKey: privateKey, publicKey };
}
