// Verifies a JWT-SVID with `jose` against a SPIFFE bundle (as printed by
// `tessera bundle show --format spiffe`), independently of Tessera's own verifier.
//   node examples/verify-jwt-svid.ts bundle.json token.jwt AUDIENCE
// SPIFFE bundles mark JWT keys `use: "jwt-svid"`, which jose's JWKS helpers refuse, so the key is
// resolved here by `kid` and imported with importJWK.
import { readFileSync } from 'node:fs';
import { decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose';

const [bundleFile, tokenFile, audience] = process.argv.slice(2);
if (!bundleFile || !tokenFile || !audience) {
  console.error('usage: verify-jwt-svid.ts BUNDLE.json TOKEN_FILE AUDIENCE');
  process.exit(2);
}
const bundle = JSON.parse(readFileSync(bundleFile, 'utf8')) as { keys: (JWK & { use?: string })[] };
const token = readFileSync(tokenFile, 'utf8').trim();
const { kid, alg } = decodeProtectedHeader(token);
const jwk = bundle.keys.find((k) => k.use === 'jwt-svid' && k.kid === kid);
if (!jwk || !alg) {
  console.error(`no jwt-svid key with kid ${kid} in the bundle`);
  process.exit(1);
}
const { use: _use, ...key } = jwk;
const { payload } = await jwtVerify(token, await importJWK(key, alg), {
  audience,
  algorithms: [alg],
});
const expires = new Date((payload.exp ?? 0) * 1000).toISOString();
console.log(
  `valid JWT-SVID for ${payload.sub} (aud ${JSON.stringify(payload.aud)}, expires ${expires})`,
);
