// A stand-in CI identity provider for trying the token exchange offline: signs a token shaped
// like a GitHub Actions OIDC token with a key of its own, and writes that key's public JWK Set
// so that `tessera issuer add --jwks-file` can register it. The key pair is kept in KEY_FILE
// (0600) and reused, so tokens minted later still verify against the registered JWKS.
//   node examples/ci-token.ts --jwks ci-jwks.json --key ci-key.json \
//     --repository octo-org/app --ref refs/heads/main > gh-token.jwt
// The real GitHub issuer is registered with `--discovery` instead (docs/token-exchange.md).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';

const { values: o } = parseArgs({
  options: {
    jwks: { type: 'string', default: 'ci-jwks.json' },
    key: { type: 'string', default: 'ci-key.json' },
    issuer: { type: 'string', default: 'https://token.actions.githubusercontent.com' },
    audience: { type: 'string', default: 'https://github.com/octo-org' },
    repository: { type: 'string', default: 'octo-org/app' },
    ref: { type: 'string', default: 'refs/heads/main' },
    ttl: { type: 'string', default: '300' },
  },
});

const KID = 'ci-example-1';
let privateJwk: JWK;
if (existsSync(o.key)) {
  privateJwk = JSON.parse(readFileSync(o.key, 'utf8')) as JWK;
} else {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  privateJwk = { ...(await exportJWK(privateKey)), kid: KID, alg: 'ES256' };
  writeFileSync(o.key, JSON.stringify(privateJwk) + '\n', { mode: 0o600 });
}
const { d: _d, ...publicJwk } = privateJwk;
writeFileSync(o.jwks, JSON.stringify({ keys: [{ ...publicJwk, use: 'sig' }] }, null, 2) + '\n');

const [owner] = o.repository.split('/');
const now = Math.floor(Date.now() / 1000);
const token = await new SignJWT({
  repository: o.repository,
  repository_owner: owner,
  ref: o.ref,
  workflow: 'deploy',
  event_name: 'push',
  actor: 'octocat',
})
  .setProtectedHeader({ alg: 'ES256', kid: KID, typ: 'JWT' })
  .setIssuer(o.issuer)
  .setAudience(o.audience)
  .setSubject(`repo:${o.repository}:ref:${o.ref}`)
  .setIssuedAt(now)
  .setNotBefore(now)
  .setExpirationTime(now + Number(o.ttl))
  .setJti(crypto.randomUUID())
  .sign(await importJWK(privateJwk, 'ES256'));
process.stdout.write(token + '\n');
