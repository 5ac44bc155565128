// A trust policy says which external OIDC tokens (GitHub Actions, GitLab CI, Kubernetes service
// accounts, …) the token exchange accepts, and what it hands out for them: an X.509/JWT SVID with
// a SPIFFE ID built from the token's claims, or an access token for a fixed audience and scopes.
// The model follows GCP Workload Identity Federation (../../../../docs/trust-policies.md):
// attribute_mapping (CEL, claims → attributes) first, then condition (CEL, must be true).
// This file is only the shape and the static checks; compile.ts parses the CEL. The
// expression size is checked here too, so the error names the field before any parsing.
import { z } from 'zod';
import { InvalidArgumentError } from '../../../core/errors.ts';
import { MAX_EXPRESSION_BYTES } from '../../../conditions/limits.ts';

/** GCP allows 50 custom attributes; subject and groups come on top. */
export const MAX_ATTRIBUTES = 52;
export const DEFAULT_TTL = '15m';

/** Attribute names: lowercase identifiers, as GCP's `attribute.<name>` keys ([a-z0-9_], ≤ 100). */
export const ATTRIBUTE_NAME_RE = /^[a-z][a-z0-9_]{0,99}$/;

const expression = z
  .string()
  .min(1, 'must not be empty')
  .refine(
    (v) => Buffer.byteLength(v, 'utf8') <= MAX_EXPRESSION_BYTES,
    `CEL expression is longer than ${MAX_EXPRESSION_BYTES} bytes`,
  );

const httpsUrl = z.string().refine((v) => {
  // The issuer is compared byte for byte with the token's `iss` and is where JWKS discovery
  // starts, so it must be an absolute https URL without query, fragment or credentials.
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return false;
  }
  // spiffe://<trust domain>: federated JWT-SVIDs (sts/federated.ts).
  if (/^spiffe:\/\/[a-z0-9._-]+$/.test(v)) return true;
  return u.protocol === 'https:' && !u.search && !u.hash && !u.username && !u.password;
}, 'must be an https URL without query, fragment or userinfo, or spiffe://<trust domain>');

export const trustPolicySchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z0-9-]+$/, 'must match [a-z0-9-]+')
      .max(64, 'must be at most 64 characters'),
    issuer: httpsUrl,
    /** CEL over `assertion` (the token claims) and `attribute` (the mapped attributes); bool. */
    condition: expression,
    /** target attribute → CEL over `assertion`; `subject` is required, `groups` is a list. */
    attribute_mapping: z
      .record(
        z.string().regex(ATTRIBUTE_NAME_RE, 'attribute names must match [a-z][a-z0-9_]*'),
        expression,
      )
      .refine((m) => 'subject' in m, 'must map "subject" (e.g. "assertion.sub")')
      .refine(
        (m) => Object.keys(m).length <= MAX_ATTRIBUTES,
        `at most ${MAX_ATTRIBUTES} attributes`,
      ),
    /** e.g. "spiffe://example.org/ci/github/{repository*}"; see spiffe-template.ts. */
    spiffe_id: z.string().min(1).max(2048).optional(),
    access_token: z
      .strictObject({
        audience: z.string().min(1).max(256),
        scopes: z
          .array(
            z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'invalid scope token (RFC 6749 §3.3)'),
          )
          .max(32),
        /** Refuse requests without a DPoP proof (RFC 9449): every token is sender-constrained. */
        require_dpop: z.boolean().default(false),
      })
      .optional(),
    ttl: z.string().default(DEFAULT_TTL),
  })
  .refine((p) => (p.spiffe_id === undefined) !== (p.access_token === undefined), {
    message: 'exactly one of spiffe_id or access_token is required',
  });

/** A policy as written by an operator (input to parseTrustPolicy). */
export type TrustPolicyInput = z.input<typeof trustPolicySchema>;
/** A validated policy (defaults applied); still uncompiled. */
export type TrustPolicy = z.output<typeof trustPolicySchema>;

/** Validates a policy document; errors name the field, e.g. `trust policy "x": condition: …`. */
export function parseTrustPolicy(input: unknown): TrustPolicy {
  const result = trustPolicySchema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const name =
    typeof input === 'object' &&
    input !== null &&
    typeof (input as { name?: unknown }).name === 'string'
      ? ` "${(input as { name: string }).name.slice(0, 64)}"`
      : '';
  const where = issue && issue.path.length > 0 ? issue.path.map(String).join('.') + ': ' : '';
  throw new InvalidArgumentError(`trust policy${name}: ${where}${issue?.message ?? 'invalid'}`);
}
