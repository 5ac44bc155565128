// Verification of cloud identity tokens (GCE instance identity tokens, Azure managed-identity
// tokens) against the provider's published keys. The keys come from a configured JWKS URL (https,
// or http to a loopback host for local stand-ins), fetched with bounded time and size, cached,
// and refreshed on an unknown kid at most once per `minRefreshIntervalMs`, so tokens with made-up
// kids cannot turn the server into a request amplifier. The key decides the algorithm family
// (never the token header alone), and the token's expiry, issuer and audience are checked here.
import { type JsonWebKey, type KeyObject, createPublicKey, verify } from 'node:crypto';
import { PermissionDeniedError, UnavailableError } from '../../core/errors.ts';
import { isAllowedJwtAlg, jwsVerifyParams } from '../../crypto/jwt/alg.ts';
import { readBounded } from './metadata-http.ts';

export const MAX_CLOUD_JWT_BYTES = 16 * 1024;
const MAX_JWKS_BYTES = 256 * 1024;
const MAX_KEYS = 100;
const LEEWAY_SECONDS = 60;
const SEGMENT_RE = /^[A-Za-z0-9_-]+$/;

export interface JwksSourceOptions {
  readonly url: URL;
  readonly now: () => number;
  readonly timeoutMs?: number;
  readonly minRefreshIntervalMs?: number;
  readonly maxAgeMs?: number;
}

/** A JWKS URL setting: https, or http only to a loopback host (tests, local stand-ins). */
export function jwksUrl(raw: string, what: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new TypeError(`${what}: "${raw.slice(0, 64)}" is not a URL`);
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
  if (!(u.protocol === 'https:' || (u.protocol === 'http:' && loopback)) || u.username || u.hash)
    throw new TypeError(`${what}: "${raw.slice(0, 64)}" must be https (http only to loopback)`);
  return u;
}

export class JwksSource {
  readonly #o: JwksSourceOptions;
  #keys = new Map<string, KeyObject>();
  #fetchedAt = -Infinity;
  #pending: Promise<void> | null = null;

  constructor(o: JwksSourceOptions) {
    this.#o = o;
  }

  async key(kid: string): Promise<KeyObject | null> {
    const now = this.#o.now();
    const stale = now - this.#fetchedAt > (this.#o.maxAgeMs ?? 3_600_000);
    const mayRefresh = now - this.#fetchedAt >= (this.#o.minRefreshIntervalMs ?? 30_000);
    if ((stale || !this.#keys.has(kid)) && mayRefresh) await this.#refresh();
    return this.#keys.get(kid) ?? null;
  }

  #refresh(): Promise<void> {
    this.#pending ??= this.#fetch().finally(() => (this.#pending = null));
    return this.#pending;
  }

  async #fetch(): Promise<void> {
    this.#fetchedAt = this.#o.now();
    const where = `JWKS ${this.#o.url.origin}${this.#o.url.pathname}`;
    let text: string;
    try {
      const res = await fetch(this.#o.url, {
        redirect: 'error',
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(this.#o.timeoutMs ?? 5_000),
      });
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new Error(`HTTP ${res.status}`);
      }
      const buf = await readBounded(res, MAX_JWKS_BYTES);
      if (!buf) throw new Error(`larger than ${MAX_JWKS_BYTES} bytes`);
      text = buf.toString('utf8');
    } catch (e) {
      throw new UnavailableError(`${where}: ${(e as Error).message}`, { cause: e });
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new UnavailableError(`${where}: not JSON`);
    }
    const list = (doc as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(list)) throw new UnavailableError(`${where}: no "keys" list`);
    const keys = new Map<string, KeyObject>();
    for (const jwk of list.slice(0, MAX_KEYS)) {
      const kid = (jwk as { kid?: unknown }).kid;
      if (typeof kid !== 'string' || kid === '' || kid.length > 256) continue;
      try {
        keys.set(kid, createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }));
      } catch {
        // A key this runtime cannot import is skipped, not fatal: the others still verify.
      }
    }
    this.#keys = keys;
  }
}

export interface CloudJwtCheck {
  /** Attestor name, prefixing every error. */
  readonly what: string;
  readonly keys: JwksSource;
  readonly now: number;
  /** Accepted `iss` values; empty: any (then the caller checks identity from other claims). */
  readonly issuers: readonly string[];
  /** `aud` must be (or contain) this. */
  readonly audience: string;
}

/** Verifies the compact JWS and its time and audience claims; returns the payload claims. */
export async function verifyCloudJwt(
  token: string,
  c: CloudJwtCheck,
): Promise<Record<string, unknown>> {
  const deny = (m: string) => new PermissionDeniedError(`${c.what}: ${m}`);
  if (token.length === 0 || token.length > MAX_CLOUD_JWT_BYTES)
    throw deny(`token must be 1..${MAX_CLOUD_JWT_BYTES} bytes`);
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((p) => SEGMENT_RE.test(p)))
    throw deny('token is not a compact JWS');
  const [h, p, s] = parts as [string, string, string];
  const header = decode(h);
  const claims = decode(p);
  if (!header || !claims) throw deny('token header or payload is not a JSON object');
  const { alg, kid } = header;
  if (!isAllowedJwtAlg(alg))
    throw deny(`token algorithm "${String(alg).slice(0, 16)}" is not allowed`);
  if (typeof kid !== 'string' || kid === '') throw deny('token has no kid');
  const key = await c.keys.key(kid);
  if (!key) throw deny(`token key "${kid.slice(0, 64)}" is not among the provider's keys`);
  const params = jwsVerifyParams(alg, key);
  if (!params) throw deny(`token algorithm ${alg} does not match its key`);
  const sig = Buffer.from(s, 'base64url');
  if (params.sigLength !== null && sig.length !== params.sigLength)
    throw deny('token signature does not verify');
  if (!verify(params.hash, Buffer.from(`${h}.${p}`), params.options, sig))
    throw deny('token signature does not verify');
  const nowS = c.now / 1000;
  if (typeof claims.exp !== 'number') throw deny('token has no exp');
  if (claims.exp + LEEWAY_SECONDS < nowS) throw deny('token has expired');
  if (typeof claims.nbf === 'number' && claims.nbf - LEEWAY_SECONDS > nowS)
    throw deny('token is not valid yet');
  if (typeof claims.iat === 'number' && claims.iat - LEEWAY_SECONDS > nowS)
    throw deny('token was issued in the future');
  if (c.issuers.length > 0 && !c.issuers.includes(String(claims.iss)))
    throw deny(`token issuer "${String(claims.iss).slice(0, 128)}" is not trusted`);
  const aud = claims.aud;
  const auds = Array.isArray(aud) ? aud : [aud];
  if (!auds.includes(c.audience)) throw deny(`token audience is not "${c.audience}"`);
  return claims;
}

function decode(seg: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(Buffer.from(seg, 'base64url').toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}
