// The token exchange's last step: what the admitting trust policy issues, a JWT-SVID for its
// SPIFFE ID or an RFC 9068 access token (DPoP-bound when the request carried a proof), checked
// against what the request asked for, and the RFC 8693 response that carries it.
import { checkAudience, type Minter } from '../svid/minter.ts';
import type { VerifiedDpopProof } from './dpop.ts';
import { OAuthError } from './errors.ts';
import type { Authorization } from './exchange-authorize.ts';
import {
  TOKEN_TYPE_ACCESS_TOKEN,
  TOKEN_TYPE_JWT,
  type ExchangeRequest,
} from './exchange-request.ts';
import { clip } from './form.ts';

export interface IssueDeps {
  readonly minter: Minter;
  readonly now: () => number;
  /** The `sts.max_ttl` bound on every token issued. */
  readonly maxTtlMs: number;
}

export interface Issued {
  /** What the audit record names as the target. */
  readonly issued: string;
  readonly response: Record<string, unknown>;
}

export function issueToken(
  d: IssueDeps,
  r: ExchangeRequest,
  a: Authorization,
  dpop: VerifiedDpopProof | undefined,
): Promise<Issued> {
  return a.decision.spiffeId ? issueJwtSvid(d, r, a) : issueAccessToken(d, r, a, dpop);
}

async function issueJwtSvid(d: IssueDeps, r: ExchangeRequest, a: Authorization): Promise<Issued> {
  const spiffeId = a.decision.spiffeId;
  if (!spiffeId) throw new Error(`policy ${a.policy.name} has no SPIFFE ID`);
  if (r.audience.length === 0)
    throw new OAuthError('invalid_request', 'audience is required for a JWT-SVID');
  if (r.scopes !== undefined)
    throw new OAuthError('invalid_scope', 'scope does not apply to a JWT-SVID');
  try {
    checkAudience(r.audience);
  } catch (e) {
    throw new OAuthError('invalid_target', (e as Error).message);
  }
  const ttlMs = Math.min(a.decision.ttlMs, d.maxTtlMs);
  const svid = await d.minter.jwt(spiffeId.toString(), r.audience, ttlMs);
  return {
    issued: svid.spiffeId,
    response: tokenResponse(svid.token, TOKEN_TYPE_JWT, 'N_A', svid.expiresAt, d.now()),
  };
}

async function issueAccessToken(
  d: IssueDeps,
  r: ExchangeRequest,
  { policy: p, decision }: Authorization,
  dpop: VerifiedDpopProof | undefined,
): Promise<Issued> {
  const at = decision.accessToken;
  if (!at) throw new Error(`policy ${p.name} has no output`);
  if (p.output.kind === 'access_token' && p.output.requireDpop && !dpop)
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
  const subject = decision.attributes.subject;
  const signed = await d.minter.accessToken({
    subject: typeof subject === 'string' ? subject : '',
    audience: at.audience,
    clientId: p.name,
    scopes,
    jkt: dpop?.jkt,
    ttlMs: Math.min(decision.ttlMs, d.maxTtlMs),
  });
  return {
    issued: `${at.audience} (access token)`,
    response: tokenResponse(
      signed.token,
      TOKEN_TYPE_ACCESS_TOKEN,
      dpop ? 'DPoP' : 'Bearer',
      signed.expiresAt,
      signed.issuedAt,
    ),
  };
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
