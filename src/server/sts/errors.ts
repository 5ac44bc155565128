// RFC 6749 §5.2 error responses of the token endpoint. Every failure of an exchange step is an
// OAuthError; renderError is the one place that turns it into a response. The description is
// written for the client and never carries internals; `reason` (audit only) may say more.
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_grant'
  | 'unsupported_grant_type'
  | 'invalid_target'
  | 'invalid_scope'
  | 'invalid_dpop_proof';

export class OAuthError extends Error {
  readonly code: OAuthErrorCode;
  readonly description: string;
  /** For the audit record; defaults to the description. */
  readonly reason: string;
  constructor(code: OAuthErrorCode, description: string, reason?: string) {
    super(description);
    this.code = code;
    this.description = description;
    this.reason = reason ?? description;
  }
}

export interface TokenResponse {
  readonly status: number;
  readonly body: Record<string, unknown>;
  /** Extra response headers (e.g. WWW-Authenticate). */
  readonly headers?: Readonly<Record<string, string>>;
}

export function renderError(e: unknown): TokenResponse {
  if (e instanceof OAuthError) {
    return { status: 400, body: { error: e.code, error_description: e.description } };
  }
  return { status: 500, body: { error: 'server_error', error_description: 'internal error' } };
}
