// The first step of a token exchange: the RFC 8693 form of one POST /token, checked field by field
// (untrusted, from the caller). Every refusal is an OAuthError naming the field.
import { OAuthError } from './errors.ts';
import type { Form } from './form.ts';
import { MAX_SUBJECT_TOKEN_BYTES } from './issuers.ts';

export const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';
export const TOKEN_TYPE_ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';
export const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const SUBJECT_TOKEN_TYPES = new Set([TOKEN_TYPE_JWT, TOKEN_TYPE_ID_TOKEN]);

export interface ExchangeRequest {
  readonly subjectToken: string;
  readonly audience: readonly string[];
  readonly scopes: readonly string[] | undefined;
  readonly kind: 'spiffe_id' | 'access_token';
}

export function parseExchangeRequest(form: Form): ExchangeRequest {
  const one = (name: string): string | undefined => form.get(name)?.[0];
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
  if (form.has('actor_token'))
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
  return {
    // Clients reading the token from a file (google-auth-library's file credential source)
    // send its trailing newline; it is no part of a compact JWS.
    subjectToken: subjectToken.trimEnd(),
    audience: form.get('audience') ?? [],
    scopes,
    kind: requested === TOKEN_TYPE_JWT ? 'spiffe_id' : 'access_token',
  };
}
