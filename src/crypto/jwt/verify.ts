// JWT-SVID validation (JWT-SVID spec §3-5, go-spiffe's jwtsvid.ParseAndValidate rules):
// compact JWS only, an allowed asymmetric alg that matches the resolved key, kid required, only
// the headers the spec defines, sub a SPIFFE ID whose trust domain picks the key, aud contains
// ours, exp required. Every rejection is an InvalidArgumentError with the reason.
import { verify, type KeyObject } from 'node:crypto';
import { InvalidArgumentError } from '../../core/errors.ts';
import { SpiffeId } from '../../core/spiffe-id.ts';
import { isAllowedJwtAlg, jwsVerifyParams, type JwtAlg } from './alg.ts';

export const DEFAULT_MAX_JWT_BYTES = 8192;
export const DEFAULT_LEEWAY_SECONDS = 30;

export interface VerifyJwtSvidOptions {
  /** The JWT authority key for (trust domain of sub, kid), or null when unknown. */
  resolveKey(
    trustDomain: string,
    kid: string,
  ): KeyObject | null | undefined | Promise<KeyObject | null | undefined>;
  /** The `aud` claim must contain this value (or, given a list, at least one of them). */
  readonly audience: string | readonly string[];
  /** Epoch ms. */
  readonly now: number;
  readonly leewaySeconds?: number;
  readonly maxBytes?: number;
}

export interface VerifiedJwtSvid {
  readonly spiffeId: string;
  readonly id: SpiffeId;
  readonly claims: Record<string, unknown>;
  /** Epoch ms from exp. */
  readonly expiresAt: number;
}

const SEGMENT_RE = /^[A-Za-z0-9_-]+$/;
const ALLOWED_HEADERS = new Set(['alg', 'kid', 'typ']);

const fail = (reason: string): InvalidArgumentError =>
  new InvalidArgumentError(`invalid JWT-SVID: ${reason}`);

export async function verifyJwtSvid(
  token: string,
  o: VerifyJwtSvidOptions,
): Promise<VerifiedJwtSvid> {
  const maxBytes = o.maxBytes ?? DEFAULT_MAX_JWT_BYTES;
  if (typeof token !== 'string' || token === '') throw fail('token is empty');
  if (token.length > maxBytes) throw fail(`token is larger than ${maxBytes} bytes`);
  const parts = token.split('.');
  if (parts.length !== 3) throw fail('not a JWS compact serialization (expected 3 segments)');
  const [h, p, s] = parts as [string, string, string];
  if (!SEGMENT_RE.test(h) || !SEGMENT_RE.test(p) || !SEGMENT_RE.test(s)) {
    throw fail('segments must be non-empty unpadded base64url');
  }
  const header = decodeJson(h, 'header');
  const { alg, kid } = checkHeader(header);
  const claims = decodeJson(p, 'payload');
  if (typeof claims.sub !== 'string') throw fail('sub claim is missing');
  const id = parseSub(claims.sub);
  const key = await o.resolveKey(id.trustDomain.name, kid);
  if (!key) throw fail(`unknown kid "${clip(kid)}" for trust domain "${id.trustDomain.name}"`);
  const params = jwsVerifyParams(alg, key);
  if (!params) throw fail(`algorithm ${alg} does not match the key for kid "${clip(kid)}"`);
  const sig = Buffer.from(s, 'base64url');
  if (params.sigLength !== null && sig.length !== params.sigLength)
    throw fail('signature has the wrong length');
  let ok = false;
  try {
    ok = verify(params.hash, Buffer.from(`${h}.${p}`, 'latin1'), params.options, sig);
  } catch {
    ok = false;
  }
  if (!ok) throw fail('signature verification failed');
  const expiresAt = checkClaims(claims, o);
  return { spiffeId: id.toString(), id, claims, expiresAt };
}

function decodeJson(segment: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    throw fail(`${what} is not valid JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw fail(`${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

function checkHeader(header: Record<string, unknown>): { alg: JwtAlg; kid: string } {
  const { alg, kid, typ } = header;
  if (alg === 'none') throw fail('alg "none" is not allowed');
  if (!isAllowedJwtAlg(alg)) throw fail(`algorithm "${clip(String(alg))}" is not allowed`);
  if ('crit' in header) throw fail('the crit header is not supported');
  for (const name of Object.keys(header)) {
    if (!ALLOWED_HEADERS.has(name)) throw fail(`unsupported header "${clip(name)}"`);
  }
  if (typ !== undefined && typ !== 'JWT' && typ !== 'JOSE')
    throw fail(`typ "${clip(String(typ))}" is not JWT or JOSE`);
  if (typeof kid !== 'string' || kid === '') throw fail('kid header is required');
  return { alg, kid };
}

function parseSub(sub: string): SpiffeId {
  try {
    return SpiffeId.parse(sub);
  } catch (e) {
    throw fail(`sub is not a valid SPIFFE ID (${(e as Error).message})`);
  }
}

function checkClaims(c: Record<string, unknown>, o: VerifyJwtSvidOptions): number {
  const now = o.now / 1000;
  const leeway = o.leewaySeconds ?? DEFAULT_LEEWAY_SECONDS;
  const aud = typeof c.aud === 'string' ? [c.aud] : c.aud;
  if (!Array.isArray(aud) || aud.length === 0 || aud.some((a) => typeof a !== 'string')) {
    throw fail('aud claim is missing or malformed');
  }
  const expected: readonly string[] = typeof o.audience === 'string' ? [o.audience] : o.audience;
  if (expected.length === 0 || expected.some((a) => typeof a !== 'string' || a === ''))
    throw fail('no audience to check against');
  if (!expected.some((a) => aud.includes(a)))
    throw fail(`audience mismatch: expected "${clip(expected.join('", "'))}"`);
  if (typeof c.exp !== 'number' || !Number.isFinite(c.exp)) throw fail('exp claim is missing');
  if (now > c.exp + leeway) throw fail('token has expired');
  if (c.nbf !== undefined) {
    if (typeof c.nbf !== 'number') throw fail('nbf claim is malformed');
    if (now + leeway < c.nbf) throw fail('token is not yet valid (nbf)');
  }
  if (c.iat !== undefined) {
    if (typeof c.iat !== 'number') throw fail('iat claim is malformed');
    if (now + leeway < c.iat) throw fail('token was issued in the future (iat)');
  }
  return c.exp * 1000;
}

function clip(s: string): string {
  return s.length > 80 ? s.slice(0, 77) + '...' : s;
}
