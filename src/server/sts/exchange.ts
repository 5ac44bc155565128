// RFC 8693 token exchange: an external OIDC token (GitHub Actions, GitLab CI, Kubernetes, …) in,
// a JWT-SVID or an RFC 9068 access token out, as the issuer's trust policies allow. A request runs
// through an ordered list of small steps; any step may throw an OAuthError, which renderError
// turns into the RFC 6749 §5.2 response. Every exchange and every denial is audited (never the
// token itself). The steps' rules live beside it: exchange-request.ts (the form), exchange-authorize.ts
// (which trust policy admits the token), exchange-issue.ts (what it issues); exchange-config.ts
// checks the `sts` block's issuers and policies.
import { randomUUID } from 'node:crypto';
import type { Bundle } from '../../core/bundle.ts';
import type { RequestContext } from '../../core/caller.ts';
import type { Clock } from '../../core/clock.ts';
import { TrustDomain } from '../../core/spiffe-id.ts';
import type { DpopProofStore } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { Minter } from '../svid/minter.ts';
import { dpopReplayKey, verifyDpopProof, type VerifiedDpopProof } from './dpop.ts';
import { OAuthError, renderError, type TokenResponse } from './errors.ts';
import { type AllowedDecision, authorizeExchange } from './exchange-authorize.ts';
import { compileConfigPolicies, loadConfigIssuers, type StsConfig } from './exchange-config.ts';
import { issueToken } from './exchange-issue.ts';
import { type ExchangeRequest, parseExchangeRequest } from './exchange-request.ts';
import { DEFAULT_BUNDLE_MAX_STALENESS_MS, FederatedSubjectTokens } from './federated.ts';
import { clip, type Form } from './form.ts';
import { decodeJws } from './jws.ts';
import {
  type JwksFiles,
  verifySubjectToken,
  type TrustedIssuer,
  type VerifiedSubjectToken,
} from './issuers.ts';
import type { CompiledTrustPolicy } from './policy/compile.ts';
import type { StsRegistry } from './registry.ts';

export type { StsConfig } from './exchange-config.ts';

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

/** What the steps build up; each step fills its part. */
interface Exchange {
  readonly form: Form;
  /** The DPoP header values of the request (none: a Bearer request). */
  readonly dpopHeaders: readonly string[];
  request?: ExchangeRequest;
  dpop?: VerifiedDpopProof;
  subject?: VerifiedSubjectToken;
  policy?: CompiledTrustPolicy;
  decision?: AllowedDecision;
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
    const trustDomain = TrustDomain.parse(o.trustDomain);
    const issuers = loadConfigIssuers(o.config, trustDomain, o.jwksFiles);
    this.#federated = new FederatedSubjectTokens({
      trustDomain: trustDomain.name,
      audiences: issuers.federated,
      bundle: (td) => o.bundle(td),
      maxStalenessMs: o.config.federated_bundle_max_staleness ?? DEFAULT_BUNDLE_MAX_STALENESS_MS,
      now: () => o.clock.now(),
    });
    const known = new Set([...issuers.oidc.keys(), ...this.#federated.issuers()]);
    this.#issuers = issuers.oidc;
    this.#policies = compileConfigPolicies(o.config, trustDomain, known);
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
    x.request = parseExchangeRequest(x.form);
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
    const s = need(x.subject);
    const { policy, decision } = authorizeExchange(
      [
        ...(this.#policies.get(s.issuer) ?? []),
        ...(this.#o.registry?.apiPoliciesFor(s.issuer) ?? []),
      ],
      need(x.request),
      s,
    );
    x.policy = policy;
    x.decision = decision;
  }

  async #issue(x: Exchange): Promise<void> {
    const { issued, response } = await issueToken(
      { minter: this.#o.minter, now: () => this.#o.clock.now(), maxTtlMs: this.#o.config.max_ttl },
      need(x.request),
      { policy: need(x.policy), decision: need(x.decision) },
      x.dpop,
    );
    x.issued = issued;
    x.response = response;
  }
}

function need<T>(v: T | undefined): T {
  if (v === undefined) throw new Error('exchange step out of order');
  return v;
}
