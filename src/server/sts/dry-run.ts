// The policy dry run (`tessera trust-policy test`): one compiled policy evaluated against a
// subject token, verified exactly as the exchange verifies it, or against raw claims. Returns
// the decision, the failing predicate and the mapped attributes; issues and stores nothing.
import { InvalidArgumentError } from '../../core/errors.ts';
import { OAuthError } from './errors.ts';
import { MAX_SUBJECT_TOKEN_BYTES, type VerifiedSubjectToken } from './issuers.ts';
import { parseJsonDocument } from './json-document.ts';
import type { CompiledTrustPolicy } from './policy/compile.ts';
import { dryRunReport, evaluatePolicy, type DryRunReport } from './policy/evaluate.ts';

export const MAX_CLAIMS_DOCUMENT_BYTES = 64 * 1024;

export interface TestInput {
  /** A policy by name (config or API), or an inline document (not stored). */
  policyName?: string;
  policy?: Record<string, unknown>;
  /** A subject token, verified as the exchange would (nothing is issued or recorded as used). */
  token?: string;
  /** Raw claims (JSON text), evaluated without any signature check. */
  claims?: string;
}

export interface TestResult extends DryRunReport {
  /** token | claims */
  readonly mode: 'token' | 'claims';
}

/** Evaluates `policy` for the token or claims of `input` (the policy fields of it are not read). */
export async function dryRun(
  policy: CompiledTrustPolicy,
  input: Pick<TestInput, 'token' | 'claims'>,
  verify: (token: string) => Promise<VerifiedSubjectToken>,
): Promise<TestResult> {
  const hasToken = input.token !== undefined && input.token !== '';
  const hasClaims = input.claims !== undefined && input.claims !== '';
  if (hasToken === hasClaims)
    throw new InvalidArgumentError('exactly one of token and claims is required');
  if (hasToken) {
    const token = (input.token ?? '').trim();
    if (Buffer.byteLength(token) > MAX_SUBJECT_TOKEN_BYTES)
      throw new InvalidArgumentError(`token: larger than ${MAX_SUBJECT_TOKEN_BYTES} bytes`);
    try {
      const v = await verify(token);
      return { mode: 'token', ...dryRunReport(evaluatePolicy(policy, v.claims)) };
    } catch (e) {
      if (!(e instanceof OAuthError)) throw e;
      return {
        mode: 'token',
        decision: 'deny',
        policy: policy.name,
        failing: 'token',
        reason: e.reason === e.description ? e.description : `${e.description}: ${e.reason}`,
        attributes: {},
      };
    }
  }
  const claims = parseJsonDocument(input.claims ?? '', 'claims', MAX_CLAIMS_DOCUMENT_BYTES);
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims))
    throw new InvalidArgumentError('claims: must be a JSON object');
  return {
    mode: 'claims',
    ...dryRunReport(evaluatePolicy(policy, claims as Record<string, unknown>)),
  };
}
