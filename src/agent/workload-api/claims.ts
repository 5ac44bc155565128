// Validated JWT claims → google.protobuf.Struct. Claims come from a JSON token payload, so a JSON
// round trip is lossless and drops anything a Struct cannot carry (undefined, functions).
import type { JsonObject } from '@bufbuild/protobuf';

/** `aud` is always returned as an array (spec §2 ValidateJWTSVID), whatever the token held. */
export function claimsStruct(claims: Record<string, unknown>): JsonObject {
  const out = JSON.parse(JSON.stringify(claims)) as JsonObject;
  const aud = out['aud'];
  if (aud !== undefined && !Array.isArray(aud)) out['aud'] = [aud];
  return out;
}
