// RoleSessionName from the client's SPIFFE ID: what CloudTrail shows and `sts:RoleSessionName`
// conditions match, so it is deterministic and readable. AWS allows 2–64 characters of
// [\w+=,.@-]. SPIFFE IDs use [A-Za-z0-9._-] and "/", and "+" appears in none, so "/" → "+" keeps
// distinct IDs distinct: `spiffe://example.org/ns/prod/sa/web` → `example.org+ns+prod+sa+web`.
// When that is too long, or anything had to be replaced, the name is cut and ends in "=" and 12
// hex digits of the ID's SHA-256, which keep it unique.
import { createHash } from 'node:crypto';

export const MAX_SESSION_NAME = 64;
const HASH_HEX = 12;

export function roleSessionName(spiffeId: string): string {
  const readable = spiffeId.replace(/^spiffe:\/\//, '').replaceAll('/', '+');
  const safe = readable.replace(/[^\w+=,.@-]/g, '-');
  if (safe === readable && safe.length >= 2 && safe.length <= MAX_SESSION_NAME) return safe;
  const hash = createHash('sha256').update(spiffeId, 'utf8').digest('hex').slice(0, HASH_HEX);
  return `${safe.slice(0, MAX_SESSION_NAME - HASH_HEX - 1)}=${hash}`;
}
