// Verifies a JWT-SVID with jose against the bundle's JWT authorities, resolving the key by kid
// ourselves (SPIFFE bundles mark keys use "jwt-svid", which jose's JWKS helpers reject).
import { createPublicKey } from 'node:crypto';
import { jwtVerify, decodeProtectedHeader } from 'jose';
import type { Bundle } from '../../proto/gen/tessera/v1/types_pb.js';

export async function verifyWithBundle(
  token: string,
  bundle: Bundle | undefined,
  audience: string,
) {
  const { kid } = decodeProtectedHeader(token);
  const key = bundle?.jwtAuthorities.find((k) => k.kid === kid);
  if (!key) throw new Error(`kid ${kid} not in bundle`);
  const publicKey = createPublicKey({
    key: Buffer.from(key.publicKey),
    format: 'der',
    type: 'spki',
  });
  return jwtVerify(token, publicKey, {
    audience,
    algorithms: ['ES256', 'ES384', 'RS256', 'PS256'],
  });
}
