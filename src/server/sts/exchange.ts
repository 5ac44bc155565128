// RFC 8693 token exchange: an external OIDC token (GitHub Actions, GitLab CI, Kubernetes, …) in,
// a JWT-SVID or an RFC 9068 access token out, as the issuer's trust policies allow. A request runs
// through an ordered list of small steps; any step may throw an OAuthError, which renderError
// turns into the RFC 6749 §5.2 response. Every exchange and every denial is audited (never the
// token itself).
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../core/clock.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { TrustDomain } from '../../core/spiffe-id.ts';
import type { Bundle } from '../../core/bundle.ts';
import type { DpopProofStore } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../../core/caller.ts';
import { checkAudience, type Minter } from '../svid/minter.ts';
import { dpopReplayKey, verifyDpopProof, type VerifiedDpopProof } from './dpop.ts';
import { OAuthError, renderError, type TokenResponse } from './errors.ts';
import {
  DEFAULT_BUNDLE_MAX_STALENESS_MS,
  FederatedSubjectTokens,
  federatedTrustDomain,
} from './federated.ts';
import { clip, type Form } from './form.ts';
import { decodeJws } from './jws.ts';
import {
  loadIssuer,
  type JwksFiles,
  MAX_SUBJECT_TOKEN_BYTES,
  verifySubjectToken,
  type IssuerConfig,
  type TrustedIssuer,
  type VerifiedSubjectToken,
} from './issuers.ts';
import { compileTrustPolicy, type CompiledTrustPolicy } from './policy/compile.ts';
import { evaluatePolicy, type PolicyDecision } from './policy/evaluate.ts';
import type { StsRegistry } from './registry.ts';

export const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';
export const TOKEN_TYPE_ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';
export const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const SUBJECT_TOKEN_TYPES = new Set([TOKEN_TYPE_JWT, TOKEN_TYPE_ID_TOKEN]);

export interface StsConfig {
  readonly issuers: readonly IssuerConfig[];
  readonly policies: readonly unknown[];
  readonly max_ttl: number;
  /** Bound on the age of a cached federated bundle (ms); default 30 s. */
  readonly federated_bundle_max_staleness?: number;
}

export interface TokenExchangeOptions {
  readonly config: StsConfig;
  readonly trustDomain: string;
  readonly minter: Minter;
  readonly auditor: Auditor;
  readonly clock: Clock;
  /** Issuers and policies registered through the admin API, tried after the config's. */
  readonly registry?: StsRegistry;
  /** The token endpoint's own URL (from the issuer): what a DPoP proof's `htu` must name. */
  readonly tokenEndpoint: string;
  /** Seen DPoP proof jtis, single use enforced by the database. */
  readonly dpopProofs: DpopProofStore;
  /** The contents of the config issuers' `jwks_file`s (read by the composition root). */
  readonly jwksFiles: JwksFiles;
  /** A trust domain's bundle from the store (federated JWT-SVID subject tokens). */
  bundle(trustDomain: string): Promise<Bundle | null>;
}

interface ExchangeRequest {
  readonly subjectToken: string;
  readonly audience: readonly string[];
  readonly scopes: readonly string[] | undefined;
  readonly kind: 'spiffe_id' | 'access_token';
}

/** What the steps build up; each step fills its part. */
interface Exchange {
  readonly form: Form;
  /** The DPoP header values of the request (none: a Bearer request). */
  readonly dpopHeaders: readonly string[];
  request?: ExchangeRequest;
  dpop?: VerifiedDpopProof;
  subject?: VerifiedSubjectToken;
  policy?: CompiledTrustPolicy;
  decision?: Extract<PolicyDecision, { allowed: true }>;
  response?: Record<string, unknown>;
  issued?: string;
}

type Step = (x: Exchange) => void | Promise<void>;

export class TokenExchange {
  readonly #o: TokenExchangeOptions;
  readonly #issuers: ReadonlyMap<string, TrustedIssuer>;
  readonly #federated: FederatedSubjectTokens;
  readonly #policies: ReadonlyMap<string, readonly CompiledTrustPolicy[]>;
  readonly #steps: ReadonlyArray<[string, Step]>;

  /** Parses the JWKS files' contents and compiles the policies; a bad one is a config error naming it. */
  constructor(o: TokenExchangeOptions) {
    this.#o = o;
    const issuers = new Map<string, TrustedIssuer>();
    const federated = new Map<string, readonly string[]>();
    const trustDomain = TrustDomain.parse(o.trustDomain);
    o.config.issuers.forEach((c, i) => {
      const td = federatedTrustDomain(c.issuer);
      if (issuers.has(c.issuer) || (td !== undefined && federated.has(td)))
        throw new InvalidArgumentError(
          `config: sts.issuers[${i}]: issuer "${c.issuer}" is repeated`,
        );
      if (td === undefined) {
        issuers.set(c.issuer, loadIssuer(c, `sts.issuers[${i}]`, o.jwksFiles));
        return;
      }
      if (c.jwks_file !== undefined)
        throw new InvalidArgumentError(
          `config: sts.issuers[${i}].jwks_file: not allowed for ${c.issuer} (its keys come from the trust bundle)`,
        );
      if (td === trustDomain.name)
        throw new InvalidArgumentError(
          `config: sts.issuers[${i}].issuer: ${c.issuer} is our own trust domain, not a federated one`,
        );
      federated.set(td, [...c.audiences]);
    });
    this.#federated = new FederatedSubjectTokens({
      trustDomain: trustDomain.name,
      audiences: federated,
      bundle: (td) => o.bundle(td),
      maxStalenessMs: o.config.federated_bundle_max_staleness ?? DEFAULT_BUNDLE_MAX_STALENESS_MS,
      now: () => o.clock.now(),
    });
    const known = new Set([...issuers.keys(), ...this.#federated.issuers()]);
    const policies = new Map<string, CompiledTrustPolicy[]>();
    const names = new Set<string>();
    o.config.policies.forEach((p, i) => {
      let c: CompiledTrustPolicy;
      try {
        c = compileTrustPolicy(p, {
          trustDomain,
          maxTtlMs: o.config.max_ttl,
        });
      } catch (e) {
        throw new InvalidArgumentError(`config: sts.policies[${i}]: ${(e as Error).message}`);
      }
      if (names.has(c.name))
        throw new InvalidArgumentError(
          `config: sts.policies[${i}]: policy "${c.name}" is repeated`,
        );
      names.add(c.name);
      if (!known.has(c.issuer))
        throw new InvalidArgumentError(
          `config: sts.policies[${i}]: trust policy "${c.name}": issuer "${c.issuer}" is not in sts.issuers`,
        );
      policies.set(c.issuer, [...(policies.get(c.issuer) ?? []), c]);
    });
    this.#issuers = issuers;
    this.#policies = policies;
    this.#steps = [
      ['parse request', (x) => this.#parseRequest(x)],
      ['verify DPoP proof', (x) => this.#verifyDpopProof(x)],
      ['verify subject token', (x) => this.#verifySubjectToken(x)],
      ['authorize', (x) => this.#authorize(x)],
      ['record DPoP proof', (x) => this.#recordDpopProof(x)],
      ['issue', (x) => this.#issue(x)],
    ];
  }

  /** Names of the policies that issue access tokens (their `client_id`). */
  accessTokenClients(): string[] {
    return [...this.#policies.values()]
      .flat()
      .filter((p) => p.output.kind === 'access_token')
      .map((p) => p.name);
  }

  /**
   * Handles one POST /token with its parsed form and its `DPoP` header values (each received
   * header separately; none for a Bearer request); never throws.
   */
  async handle(parseForm: () => Form, dpopHeaders: readonly string[] = []): Promise<TokenResponse> {
    const ctx: RequestContext = { caller: { kind: 'anonymous' }, correlationId: randomUUID() };
    let x: Exchange | undefined;
    try {
      x = { form: parseForm(), dpopHeaders };
      for (const [, step] of this.#steps) await step(x);
      const response = x.response;
      if (!response) throw new Error('no response');
      await this.#audit(ctx, x, 'success', 'issued');
      return { status: 200, body: response };
    } catch (e) {
      const reason = e instanceof OAuthError ? e.reason : 'internal error';
      try {
        await this.#audit(ctx, x, e instanceof OAuthError ? 'denied' : 'error', reason);
      } catch {
        return renderError(new Error('audit failed'));
      }
      return renderError(e);
    }
  }

  #audit(
    ctx: RequestContext,
    x: Exchange | undefined,
    outcome: 'success' | 'denied' | 'error',
    reason: string,
  ): Promise<void> {
    return this.#o.auditor.log(ctx, {
      action: 'sts.exchange',
      target: x?.issued ?? x?.subject?.issuer ?? '',
      outcome,
      details: {
        issuer: x?.subject?.issuer ?? '',
        policy: x?.policy?.name ?? '',
        ...(x?.subject && typeof x.subject.claims.sub === 'string'
          ? { subject: clip(x.subject.claims.sub) }
          : {}),
        ...(x?.dpop ? { dpop_jkt: x.dpop.jkt } : {}),
        reason,
      },
    });
  }

  #parseRequest(x: Exchange): void {
    const one = (name: string): string | undefined => x.form.get(name)?.[0];
    const grantType = one('grant_type');
    if (grantType === undefined) throw new OAuthError('invalid_request', 'grant_type is required');
    if (grantType !== GRANT_TYPE)
      throw new OAuthError('unsupported_grant_type', `grant_type must be ${GRANT_TYPE}`);
    const subjectToken = one('subject_token');
    if (subjectToken === undefined)
      throw new OAuthError('invalid_request', 'subject_token is required');
    if (Buffer.byteLength(subjectToken) > MAX_SUBJECT_TOKEN_BYTES)
      throw new OAuthError(
        'invalid_request',
        `subject_token is larger than ${MAX_SUBJECT_TOKEN_BYTES} bytes`,
      );
    const subjectType = one('subject_token_type');
    if (subjectType === undefined || !SUBJECT_TOKEN_TYPES.has(subjectType))
      throw new OAuthError(
        'invalid_request',
        `subject_token_type must be ${TOKEN_TYPE_JWT} or ${TOKEN_TYPE_ID_TOKEN}`,
      );
    if (x.form.has('actor_token'))
      throw new OAuthError('invalid_request', 'actor_token is not supported');
    const requested = one('requested_token_type') ?? TOKEN_TYPE_JWT;
    if (requested !== TOKEN_TYPE_JWT && requested !== TOKEN_TYPE_ACCESS_TOKEN)
      throw new OAuthError(
        'invalid_request',
        `requested_token_type must be ${TOKEN_TYPE_JWT} or ${TOKEN_TYPE_ACCESS_TOKEN}`,
      );
    const scope = one('scope');
    const scopes = scope === undefined ? undefined : scope.split(' ');
    if (scopes?.some((s) => s === ''))
      throw new OAuthError('invalid_request', 'scope must be space-separated tokens');
    x.request = {
      // Clients reading the token from a file (google-auth-library's file credential source)
      // send its trailing newline; it is no part of a compact JWS.
      subjectToken: subjectToken.trimEnd(),
      audience: x.form.get('audience') ?? [],
      scopes,
      kind: requested === TOKEN_TYPE_JWT ? 'spiffe_id' : 'access_token',
    };
  }

  /**
   * DPoP binds access tokens only. A JWT-SVID cannot carry `cnf` (its claims are fixed by the
   * JWT-SVID spec and its verifiers ignore it), so a DPoP request for one is refused rather than
   * answered with a token the client would wrongly believe sender-constrained.
   */
  #verifyDpopProof(x: Exchange): void {
    if (x.dpopHeaders.length === 0) return;
    if (need(x.request).kind !== 'access_token')
      throw new OAuthError(
        'invalid_request',
        'DPoP applies to access tokens only, not to JWT-SVIDs',
        'DPoP: proof sent with a JWT-SVID request',
      );
    x.dpop = verifyDpopProof(x.dpopHeaders, this.#o.tokenEndpoint, this.#o.clock.now());
  }

  /** Single use of the proof, enforced by the database; after authorization, before issuing. */
  async #recordDpopProof(x: Exchange): Promise<void> {
    const proof = x.dpop;
    if (!proof) return;
    const fresh = await this.#o.dpopProofs.record(
      dpopReplayKey(this.#o.tokenEndpoint, proof),
      proof.expiresAt,
      this.#o.clock.now(),
    );
    if (!fresh)
      throw new OAuthError(
        'invalid_dpop_proof',
        'DPoP proof has already been used',
        `DPoP: replayed proof jti "${clip(proof.jti)}"`,
      );
  }

  async #verifySubjectToken(x: Exchange): Promise<void> {
    x.subject = await this.verifySubject(need(x.request).subjectToken);
  }

  /**
   * Verifies a subject token as the exchange does (also the admin dry run's check): a registered
   * OIDC issuer named by `iss` wins; otherwise a spiffe:// `sub` makes the token a federated
   * JWT-SVID (its `iss`, if any, plays no part). Failures are OAuthError invalid_grant.
   */
  async verifySubject(token: string): Promise<VerifiedSubjectToken> {
    const now = this.#o.clock.now();
    const issuers = this.#o.registry?.trustedIssuers ?? this.#issuers;
    const jws = decodeJws(token);
    const claims = jws?.claims;
    return claims &&
      !(typeof claims.iss === 'string' && issuers.get(claims.iss) !== undefined) &&
      FederatedSubjectTokens.claimsSpiffeSubject(claims)
      ? this.#federated.verify(token, claims, now)
      : verifySubjectToken(token, issuers, now, jws);
  }

  #authorize(x: Exchange): void {
    const r = need(x.request);
    const s = need(x.subject);
    const ofKind = [
      ...(this.#policies.get(s.issuer) ?? []),
      ...(this.#o.registry?.apiPoliciesFor(s.issuer) ?? []),
    ].filter((p) => p.output.kind === r.kind);
    // An access-token request names its audience: only policies issuing for it are candidates,
    // so a policy listed earlier for another audience cannot shadow the right one.
    const candidates = ofKind.filter((p) => {
      const o = p.output;
      return o.kind !== 'access_token' || r.audience.every((a) => a === o.audience);
    });
    if (ofKind.length > 0 && candidates.length === 0)
      throw new OAuthError('invalid_target', 'no trust policy issues tokens for this audience');
    if (candidates.length === 0)
      throw new OAuthError(
        'invalid_grant',
        'no trust policy admits this token',
        'no policy for the issuer and requested token type',
      );
    const reasons: string[] = [];
    for (const p of candidates) {
      const d = evaluatePolicy(p, s.claims);
      if (d.allowed) {
        x.policy = p;
        x.decision = d;
        return;
      }
      reasons.push(`${d.policy}: ${d.failing}: ${d.reason}`);
    }
    throw new OAuthError('invalid_grant', 'no trust policy admits this token', reasons.join('; '));
  }

  async #issue(x: Exchange): Promise<void> {
    const r = need(x.request);
    const p = need(x.policy);
    const d = need(x.decision);
    const ttlMs = Math.min(d.ttlMs, this.#o.config.max_ttl);
    if (d.spiffeId) {
      if (r.audience.length === 0)
        throw new OAuthError('invalid_request', 'audience is required for a JWT-SVID');
      if (r.scopes !== undefined)
        throw new OAuthError('invalid_scope', 'scope does not apply to a JWT-SVID');
      try {
        checkAudience(r.audience);
      } catch (e) {
        throw new OAuthError('invalid_target', (e as Error).message);
      }
      const svid = await this.#o.minter.jwt(d.spiffeId.toString(), r.audience, ttlMs);
      x.issued = svid.spiffeId;
      x.response = tokenResponse(
        svid.token,
        TOKEN_TYPE_JWT,
        'N_A',
        svid.expiresAt,
        this.#o.clock.now(),
      );
      return;
    }
    const at = d.accessToken;
    if (!at) throw new Error(`policy ${p.name} has no output`);
    if (p.output.kind === 'access_token' && p.output.requireDpop && !x.dpop)
      throw new OAuthError(
        'invalid_dpop_proof',
        'a DPoP proof is required',
        `DPoP: proof required by trust policy "${p.name}"`,
      );
    if (r.audience.some((a) => a !== at.audience))
      throw new OAuthError('invalid_target', 'audience is not allowed by the trust policy');
    const scopes = r.scopes ?? at.scopes;
    const extra = scopes.filter((s) => !at.scopes.includes(s));
    if (extra.length > 0)
      throw new OAuthError('invalid_scope', `scope "${clip(extra[0] ?? '')}" is not allowed`);
    const subject = d.attributes.subject;
    const signed = await this.#o.minter.accessToken({
      subject: typeof subject === 'string' ? subject : '',
      audience: at.audience,
      clientId: p.name,
      scopes,
      jkt: x.dpop?.jkt,
      ttlMs,
    });
    x.issued = `${at.audience} (access token)`;
    x.response = tokenResponse(
      signed.token,
      TOKEN_TYPE_ACCESS_TOKEN,
      x.dpop ? 'DPoP' : 'Bearer',
      signed.expiresAt,
      signed.issuedAt,
    );
  }
}

function tokenResponse(
  token: string,
  type: string,
  tokenType: string,
  expiresAtMs: number,
  nowMs: number,
): Record<string, unknown> {
  return {
    access_token: token,
    issued_token_type: type,
    token_type: tokenType,
    expires_in: Math.max(0, Math.floor((expiresAtMs - nowMs) / 1000)),
  };
}

function need<T>(v: T | undefined): T {
  if (v === undefined) throw new Error('exchange step out of order');
  return v;
}
