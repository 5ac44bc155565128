// The token exchange's authorization step: which trust policy of the subject token's issuer admits
// it for the requested token type and audience, tried in order; the first one whose condition
// holds wins. Refusals are OAuthErrors; the log reason names each failing policy's condition.
import { OAuthError } from './errors.ts';
import type { ExchangeRequest } from './exchange-request.ts';
import type { VerifiedSubjectToken } from './issuers.ts';
import type { CompiledTrustPolicy } from './policy/compile.ts';
import { evaluatePolicy, type PolicyDecision } from './policy/evaluate.ts';

export type AllowedDecision = Extract<PolicyDecision, { allowed: true }>;

export interface Authorization {
  readonly policy: CompiledTrustPolicy;
  readonly decision: AllowedDecision;
}

/** `policies`: the issuer's, config ones first, then those registered through the admin API. */
export function authorizeExchange(
  policies: readonly CompiledTrustPolicy[],
  r: ExchangeRequest,
  s: VerifiedSubjectToken,
): Authorization {
  const ofKind = policies.filter((p) => p.output.kind === r.kind);
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
    if (d.allowed) return { policy: p, decision: d };
    reasons.push(`${d.policy}: ${d.failing}: ${d.reason}`);
  }
  throw new OAuthError('invalid_grant', 'no trust policy admits this token', reasons.join('; '));
}
