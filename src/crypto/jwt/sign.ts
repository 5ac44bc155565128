// JWT-SVID signing, hand-built for speed: base64url(JSON) twice and one crypto.sign. Header is
// SPIRE's {alg, kid, typ:"JWT"}; ECDSA signatures are IEEE P1363 (r||s) as JWS requires.
import { FailedPreconditionError, InvalidArgumentError } from '../../core/errors.ts';
import { SpiffeId } from '../../core/spiffe-id.ts';
import type { ManagedKey } from '../key-manager.ts';
import { jwtAlgFor } from './alg.ts';

export interface JwtSvidClaims {
  readonly sub: string;
  readonly aud: readonly string[];
  /** Seconds since the epoch. */
  readonly exp: number;
  readonly iat: number;
  readonly iss?: string;
  readonly jti?: string;
}

export interface SignJwtSvidOptions {
  readonly key: ManagedKey;
  readonly kid: string;
  readonly claims: JwtSvidClaims;
}

// The encoded header depends only on (alg, kid): cache the last few.
const headerCache = new Map<string, string>();

function signingInput(o: SignJwtSvidOptions): Buffer {
  const c = o.claims;
  SpiffeId.parse(c.sub);
  if (
    !Array.isArray(c.aud) ||
    c.aud.length === 0 ||
    c.aud.some((a) => typeof a !== 'string' || a === '')
  ) {
    throw new InvalidArgumentError('JWT-SVID aud must be a non-empty list of non-empty strings');
  }
  if (!Number.isInteger(c.exp) || !Number.isInteger(c.iat) || c.exp <= c.iat) {
    throw new InvalidArgumentError('JWT-SVID exp and iat must be integer seconds with exp > iat');
  }
  if (typeof o.kid !== 'string' || o.kid === '')
    throw new InvalidArgumentError('JWT-SVID kid is required');
  const alg = jwtAlgFor(o.key.type);
  const cacheKey = alg + '\0' + o.kid;
  let header = headerCache.get(cacheKey);
  if (header === undefined) {
    header = Buffer.from(JSON.stringify({ alg, kid: o.kid, typ: 'JWT' })).toString('base64url');
    if (headerCache.size > 64) headerCache.clear();
    headerCache.set(cacheKey, header);
  }
  const payload: Record<string, unknown> = { sub: c.sub, aud: c.aud, exp: c.exp, iat: c.iat };
  if (c.iss !== undefined) payload.iss = c.iss;
  if (c.jti !== undefined) payload.jti = c.jti;
  return Buffer.from(
    header + '.' + Buffer.from(JSON.stringify(payload)).toString('base64url'),
    'latin1',
  );
}

/** Synchronous signing for local keys (the hot path). */
export function signJwtSvidSync(o: SignJwtSvidOptions): string {
  const signSync = o.key.signSync;
  if (!signSync)
    throw new FailedPreconditionError(`JWT key "${o.key.ref}" cannot sign synchronously`);
  const input = signingInput(o);
  return input.toString('latin1') + '.' + b64u(signSync(input, 'ieee-p1363'));
}

export async function signJwtSvid(o: SignJwtSvidOptions): Promise<string> {
  const input = signingInput(o);
  const sig = o.key.signSync
    ? o.key.signSync(input, 'ieee-p1363')
    : await o.key.sign(input, 'ieee-p1363');
  return input.toString('latin1') + '.' + b64u(sig);
}

function b64u(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
}
