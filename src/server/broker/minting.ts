// The signing the broker offers credential providers (CredentialMinting), over the server's one
// minter (server/svid/minter.ts): JWT-SVIDs of the client, and RFC 9068 access tokens exactly as
// the token exchange signs them. Always for the client being served; TTLs capped here.
import { InvalidArgumentError } from '../../core/errors.ts';
import { parseLeafId } from '../../core/spiffe-id.ts';
import type { CredentialMinting } from '../../plugins/credential-providers/credential-provider.ts';
import { type Minter, checkAudience } from '../svid/minter.ts';

export interface MintingLimits {
  /** Longest JWT-SVID a provider may ask for (ms); the server's default JWT-SVID TTL is typical. */
  readonly maxJwtTtlMs: number;
  /** Longest access token (ms); the token exchange's sts.max_ttl is typical. */
  readonly maxAccessTokenTtlMs: number;
}

const MAX_SCOPES = 32;
const MAX_SCOPE_BYTES = 256;

export function credentialMinting(
  minter: Pick<Minter, 'jwt' | 'accessToken'>,
  limits: MintingLimits,
): CredentialMinting {
  const ttl = (seconds: number, maxMs: number) => {
    if (!Number.isFinite(seconds) || seconds <= 0)
      throw new InvalidArgumentError(`ttl: must be a positive number of seconds, got ${seconds}`);
    return Math.min(Math.floor(seconds * 1000), maxMs);
  };
  return {
    async jwtSvid(spiffeId, audience, ttlSeconds) {
      const svid = await minter.jwt(spiffeId, audience, ttl(ttlSeconds, limits.maxJwtTtlMs));
      return { token: svid.token, expiresAt: svid.expiresAt };
    },
    async accessToken(spiffeId, audience, scopes, ttlSeconds) {
      const subject = parseLeafId(spiffeId, 'spiffe_id').toString();
      checkAudience([audience]);
      if (scopes.length > MAX_SCOPES)
        throw new InvalidArgumentError(`scopes: at most ${MAX_SCOPES}`);
      for (const s of scopes) {
        if (!/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s) || s.length > MAX_SCOPE_BYTES)
          throw new InvalidArgumentError(`scopes: "${s.slice(0, 64)}" is not an OAuth scope token`);
      }
      const at = await minter.accessToken({
        subject,
        audience,
        // The workload is the OAuth client the token was issued to (RFC 9068 client_id).
        clientId: subject,
        scopes,
        ttlMs: ttl(ttlSeconds, limits.maxAccessTokenTtlMs),
      });
      return { token: at.token, expiresAt: at.expiresAt };
    },
  };
}
