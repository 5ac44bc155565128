// RFC 7662 token introspection and RFC 7009 revocation for the RFC 9068 access tokens this server
// issues (exchange.ts). A token is ours when it is a compact JWS with `typ: at+jwt`, signed by a
// JWT authority in our trust bundle (tainted keys excluded), with `iss` = the server issuer.
// Revocation records the `jti` in the shared store until the token's `exp`; introspection reads
// that table on every call (no cache), so a revocation is seen at once by every server.
//
// Callers must present `Authorization: Bearer <an active access token of ours>` whose `client_id`
// (the trust policy that issued it) is listed in `sts.introspection_clients`, unless
// `sts.introspection_open` is true. Anything wrong with the introspected token answers
// `{active: false}`, never a reason; refused callers and every revocation are audited, never a token.
import { createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import type { Bundle } from '../../core/bundle.ts';
import type { Clock } from '../../core/clock.ts';
import { isAllowedJwtAlg, jwsVerifyParams } from '../../crypto/jwt/alg.ts';
import type { RevokedTokenStore } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../../core/caller.ts';
import { OAuthError, renderError, type TokenResponse } from './errors.ts';
import { clip, type Form } from './form.ts';
import { decodeJws, verifyJws } from './jws.ts';

export const MAX_ACCESS_TOKEN_BYTES = 8192;
const ALLOWED_HEADERS = new Set(['alg', 'kid', 'typ']);
/** An RFC 7638 SHA-256 thumbprint, base64url. */
const JKT_RE = /^[A-Za-z0-9_-]{43}$/;

export interface IntrospectionConfig {
  /** Trust-policy names (`client_id`) whose access tokens may call /introspect and /revoke. */
  readonly introspection_clients: readonly string[];
  /** When true, no caller authentication is required. */
  readonly introspection_open: boolean;
}

export interface TokenIntrospectionOptions {
  readonly config: IntrospectionConfig;
  /** The server's OIDC issuer (`iss` of its access tokens). */
  readonly issuer: string;
  /** The current trust bundle of our trust domain. */
  bundle(): Bundle;
  readonly revoked: RevokedTokenStore;
  readonly auditor: Auditor;
  readonly clock: Clock;
  /** Policies made introspection clients through the admin API (besides the config's list). */
  isApiClient?: (clientId: string) => boolean;
}

/** The claims of a verified, unexpired access token of ours (revocation not yet checked). */
export interface AccessTokenClaims {
  readonly iss: string;
  readonly sub: string;
  readonly aud: string | readonly string[];
  readonly client_id: string;
  readonly scope?: string;
  readonly jti: string;
  readonly iat: number;
  readonly exp: number;
  /** RFC 9449 §6: present on DPoP-bound tokens (the proof key's RFC 7638 thumbprint). */
  readonly cnf?: { readonly jkt: string };
}

type Verified = { ok: true; claims: AccessTokenClaims } | { ok: false; reason: string };

class CallerError extends Error {
  readonly status: 401 | 403;
  constructor(status: 401 | 403, reason: string) {
    super(reason);
    this.status = status;
  }
}

export class TokenIntrospection {
  readonly #o: TokenIntrospectionOptions;
  readonly #clients: ReadonlySet<string>;
  readonly #keys = new Map<string, { der: Uint8Array; key: KeyObject }>();

  constructor(o: TokenIntrospectionOptions) {
    this.#o = o;
    this.#clients = new Set(o.config.introspection_clients);
  }

  /** POST /introspect; never throws. */
  async introspect(
    authorization: string | undefined,
    parseForm: () => Form,
  ): Promise<TokenResponse> {
    const ctx = context();
    try {
      await this.#authenticate(authorization);
      const { token } = readForm(parseForm());
      const v = await this.verify(token);
      if (!v.ok || (await this.#o.revoked.isRevoked(v.claims.jti)))
        return { status: 200, body: { active: false } };
      const c = v.claims;
      return {
        status: 200,
        body: {
          active: true,
          ...(c.scope !== undefined ? { scope: c.scope } : {}),
          client_id: c.client_id,
          sub: c.sub,
          aud: c.aud,
          iss: c.iss,
          exp: c.exp,
          iat: c.iat,
          jti: c.jti,
          // RFC 9449 §6.2: a DPoP-bound token is introspected with its cnf and token_type DPoP.
          ...(c.cnf ? { cnf: { jkt: c.cnf.jkt } } : {}),
          token_type: c.cnf ? 'DPoP' : 'Bearer',
        },
      };
    } catch (e) {
      if (e instanceof CallerError) {
        try {
          await this.#o.auditor.log(ctx, {
            action: 'sts.introspect',
            target: '',
            outcome: 'denied',
            details: { reason: e.message },
          });
        } catch {
          return renderError(new Error('audit failed'));
        }
      }
      return respondError(e);
    }
  }

  /** POST /revoke; never throws. 200 for unknown, invalid or foreign tokens (RFC 7009 §2.2). */
  async revoke(authorization: string | undefined, parseForm: () => Form): Promise<TokenResponse> {
    const ctx = context();
    let details: Record<string, unknown> = {};
    let target = '';
    let outcome: 'success' | 'denied' | 'error' = 'success';
    let result: TokenResponse = { status: 200, body: {} };
    try {
      const caller = await this.#authenticate(authorization);
      if (caller) details.caller = caller;
      const { token } = readForm(parseForm());
      const v = await this.verify(token);
      if (v.ok) {
        const c = v.claims;
        await this.#o.revoked.revoke(c.jti, c.exp * 1000, this.#o.clock.now());
        target = c.jti;
        details = { ...details, client_id: c.client_id, subject: clip(c.sub), reason: 'revoked' };
      } else {
        details = { ...details, reason: `not revoked: ${v.reason}` };
      }
    } catch (e) {
      outcome = e instanceof CallerError || e instanceof OAuthError ? 'denied' : 'error';
      details = { ...details, reason: e instanceof Error ? e.message : 'internal error' };
      result = respondError(e);
    }
    try {
      await this.#o.auditor.log(ctx, { action: 'sts.revoke', target, outcome, details });
    } catch {
      return renderError(new Error('audit failed'));
    }
    return result;
  }

  /** Checks an access token of ours: signature, typ, iss, claims, not expired. */
  async verify(token: string): Promise<Verified> {
    const no = (reason: string): Verified => ({ ok: false, reason });
    if (token.length > MAX_ACCESS_TOKEN_BYTES) return no('token too large');
    const jws = decodeJws(token);
    if (!jws || jws.signature === '') return no('malformed');
    const { header, claims: c } = jws;
    const { alg, kid, typ } = header;
    if (!isAllowedJwtAlg(alg)) return no('algorithm not allowed');
    if (Object.keys(header).some((k) => !ALLOWED_HEADERS.has(k))) return no('unsupported header');
    if (typ !== 'at+jwt') return no('not an access token');
    if (typeof kid !== 'string' || kid === '') return no('no kid');
    const key = this.#key(kid);
    if (!key) return no('unknown key');
    if (!jwsVerifyParams(alg, key)) return no('algorithm does not match the key');
    if (!verifyJws(jws, alg, key)) return no('bad signature');
    if (c.iss !== this.#o.issuer) return no('foreign issuer');
    const aud = c.aud;
    const audOk =
      (typeof aud === 'string' && aud !== '') ||
      (Array.isArray(aud) && aud.length > 0 && aud.every((a) => typeof a === 'string'));
    if (
      !audOk ||
      typeof c.sub !== 'string' ||
      typeof c.client_id !== 'string' ||
      typeof c.jti !== 'string' ||
      c.jti === '' ||
      !Number.isInteger(c.exp) ||
      !Number.isInteger(c.iat) ||
      (c.scope !== undefined && typeof c.scope !== 'string')
    )
      return no('malformed claims');
    const cnf = c.cnf as Record<string, unknown> | undefined;
    if (
      cnf !== undefined &&
      (typeof cnf !== 'object' ||
        cnf === null ||
        typeof cnf.jkt !== 'string' ||
        !JKT_RE.test(cnf.jkt))
    )
      return no('malformed claims');
    const exp = c.exp as number;
    if (this.#o.clock.now() >= exp * 1000) return no('expired');
    return {
      ok: true,
      claims: {
        iss: c.iss,
        sub: c.sub,
        aud: aud as string | string[],
        client_id: c.client_id,
        ...(typeof c.scope === 'string' ? { scope: c.scope } : {}),
        jti: c.jti,
        iat: c.iat as number,
        exp,
        ...(cnf ? { cnf: { jkt: cnf.jkt as string } } : {}),
      },
    };
  }

  /** Returns the caller's client_id (or undefined when the endpoints are open); throws CallerError. */
  async #authenticate(authorization: string | undefined): Promise<string | undefined> {
    if (this.#o.config.introspection_open) return undefined;
    const m = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(authorization ?? '');
    if (!m?.[1]) throw new CallerError(401, 'no bearer token');
    const v = await this.verify(m[1]);
    if (!v.ok) throw new CallerError(401, `caller token: ${v.reason}`);
    if (await this.#o.revoked.isRevoked(v.claims.jti))
      throw new CallerError(401, 'caller token: revoked');
    // A DPoP-bound token is not a bearer token (RFC 9449 §7.1); DPoP-authenticated callers of
    // these endpoints are not supported, so it is refused here rather than used without a proof.
    if (v.claims.cnf) throw new CallerError(401, 'caller token: DPoP-bound, not a bearer token');
    const id = v.claims.client_id;
    if (!this.#clients.has(id) && !this.#o.isApiClient?.(id))
      throw new CallerError(403, `client "${clip(v.claims.client_id)}" may not introspect`);
    return v.claims.client_id;
  }

  #key(kid: string): KeyObject | undefined {
    const k = this.#o.bundle().jwtAuthorities.find((a) => a.kid === kid);
    if (!k || k.tainted) return undefined;
    const cached = this.#keys.get(kid);
    if (cached && cached.der === k.publicKeyDer) return cached.key;
    try {
      const key = createPublicKey({
        key: Buffer.from(k.publicKeyDer),
        format: 'der',
        type: 'spki',
      });
      this.#keys.set(kid, { der: k.publicKeyDer, key });
      return key;
    } catch {
      return undefined;
    }
  }
}

function context(): RequestContext {
  return { caller: { kind: 'anonymous' }, correlationId: randomUUID() };
}

function readForm(form: Form): { token: string } {
  const token = form.get('token')?.[0];
  if (token === undefined) throw new OAuthError('invalid_request', 'token is required');
  // token_type_hint is optional and only a hint (RFC 7662 §2.1, RFC 7009 §2.1): ignored.
  return { token };
}

function respondError(e: unknown): TokenResponse {
  if (e instanceof CallerError) {
    const error = e.status === 401 ? 'invalid_token' : 'insufficient_scope';
    return {
      status: e.status,
      body: { error },
      headers: { 'www-authenticate': `Bearer error="${error}"` },
    };
  }
  return renderError(e);
}
