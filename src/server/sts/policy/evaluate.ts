// Evaluates a compiled trust policy against the claims of an already verified token. Pure: no
// clock, no I/O — signature, iss/aud/exp checks belong to the exchange endpoint; this decides what
// the claims are allowed to become. Claims are untrusted, so they are bounded and copied first,
// and every failure (hostile claims, a CEL runtime error, a bad mapped value) is a denial that
// names the failing field; evaluatePolicy never throws. The CEL engine, the claims budget and the
// explanation of a false condition are src/conditions'; the attribute rules are the policy's.
import type { SpiffeId } from '../../../core/spiffe-id.ts';
import { describeValue, explainFalse, runExpression } from '../../../conditions/evaluate.ts';
import { InputError, sanitizeInput } from '../../../conditions/sanitize.ts';
import type { CompiledTrustPolicy } from './compile.ts';

/** GCP caps google.subject at 127 bytes; GitLab subjects with long refs need more. */
export const MAX_SUBJECT_BYTES = 256;
export const MAX_ATTRIBUTE_BYTES = 1024;
export const MAX_GROUPS = 256;
/** GCP: all mapped attributes together ≤ 8 KB. */
export const MAX_ATTRIBUTES_BYTES = 8 * 1024;

export type AttributeValue = string | readonly string[];
export type Attributes = Readonly<Record<string, AttributeValue>>;

export type PolicyDecision =
  | {
      readonly allowed: true;
      readonly policy: string;
      readonly attributes: Attributes;
      readonly spiffeId?: SpiffeId;
      readonly accessToken?: { readonly audience: string; readonly scopes: readonly string[] };
      readonly ttlMs: number;
    }
  | {
      readonly allowed: false;
      readonly policy: string;
      readonly reason: string;
      /** "claims", "issuer", "attribute_mapping.<name>", "condition[: <predicate>]", "spiffe_id". */
      readonly failing: string;
      /** What was mapped before the failure (for dry runs). */
      readonly attributes: Attributes;
    };

export function evaluatePolicy(
  compiled: CompiledTrustPolicy,
  claims: Record<string, unknown>,
): PolicyDecision {
  const attributes: Record<string, AttributeValue> = {};
  const deny = (failing: string, reason: string): PolicyDecision => ({
    allowed: false,
    policy: compiled.name,
    reason,
    failing,
    attributes: { ...attributes },
  });

  let assertion: Record<string, unknown>;
  try {
    assertion = sanitizeInput(claims, 'claims');
  } catch (e) {
    return deny('claims', e instanceof InputError ? e.message : 'claims are not a JSON object');
  }
  // The exchange verifies the token against this issuer's keys; checking again here keeps a policy
  // from ever being applied to another issuer's claims by a wiring mistake.
  if (assertion['iss'] !== compiled.issuer) {
    return deny(
      'issuer',
      `token issuer ${describeValue(assertion['iss'])} is not ${compiled.issuer}`,
    );
  }

  let total = 0;
  for (const { attribute, expr } of compiled.mapping) {
    const run = runExpression(expr, { assertion });
    if (!run.ok) return deny(expr.field, `${expr.source}: ${run.error}`);
    const checked = checkAttribute(attribute, run.value);
    if ('error' in checked) return deny(expr.field, `${expr.source}: ${checked.error}`);
    attributes[attribute] = checked.value;
    total += checked.bytes;
    if (total > MAX_ATTRIBUTES_BYTES) {
      return deny(expr.field, `mapped attributes exceed ${MAX_ATTRIBUTES_BYTES} bytes in total`);
    }
  }

  const context = { assertion, attribute: { ...attributes } };
  const result = runExpression(compiled.condition, context);
  if (!result.ok) return deny('condition', result.error);
  if (result.value !== true) {
    if (typeof result.value !== 'boolean')
      return deny('condition', `evaluated to ${describeValue(result.value)}, not bool`);
    const why = explainFalse(compiled.condition, compiled.conjuncts, context);
    return deny(why.operand ? `condition: ${why.operand}` : 'condition', why.reason);
  }

  const base = {
    allowed: true as const,
    policy: compiled.name,
    attributes: { ...attributes },
    ttlMs: compiled.ttlMs,
  };
  if (compiled.output.kind === 'access_token') {
    return {
      ...base,
      accessToken: { audience: compiled.output.audience, scopes: [...compiled.output.scopes] },
    };
  }
  try {
    return { ...base, spiffeId: compiled.output.template.render(attributes) };
  } catch (e) {
    return deny('spiffe_id', e instanceof Error ? e.message : String(e));
  }
}

type Checked = { value: AttributeValue; bytes: number } | { error: string };

function checkAttribute(attribute: string, value: unknown): Checked {
  const max = attribute === 'subject' ? MAX_SUBJECT_BYTES : MAX_ATTRIBUTE_BYTES;
  if (attribute === 'groups') {
    if (!Array.isArray(value))
      return { error: `evaluated to ${describeValue(value)}, not a list of strings` };
    if (value.length > MAX_GROUPS) return { error: `more than ${MAX_GROUPS} groups` };
    let bytes = 0;
    for (const g of value as unknown[]) {
      if (typeof g !== 'string') return { error: `group ${describeValue(g)} is not a string` };
      const n = Buffer.byteLength(g, 'utf8');
      if (n > MAX_ATTRIBUTE_BYTES)
        return { error: `a group is longer than ${MAX_ATTRIBUTE_BYTES} bytes` };
      bytes += n;
    }
    return { value: [...(value as string[])], bytes };
  }
  if (typeof value !== 'string')
    return { error: `evaluated to ${describeValue(value)}, not a string` };
  if (attribute === 'subject' && value === '') return { error: 'the subject is empty' };
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > max) return { error: `longer than ${max} bytes` };
  return { value, bytes };
}

/** The JSON a dry run (`tessera trust-policy test`, coming next) prints. */
export interface DryRunReport {
  decision: 'allow' | 'deny';
  policy: string;
  failing?: string;
  reason?: string;
  attributes: Attributes;
  spiffe_id?: string;
  access_token?: { audience: string; scopes: readonly string[] };
  ttl_seconds?: number;
}

export function dryRunReport(d: PolicyDecision): DryRunReport {
  if (!d.allowed) {
    return {
      decision: 'deny',
      policy: d.policy,
      failing: d.failing,
      reason: d.reason,
      attributes: d.attributes,
    };
  }
  const r: DryRunReport = {
    decision: 'allow',
    policy: d.policy,
    attributes: d.attributes,
    ttl_seconds: d.ttlMs / 1000,
  };
  if (d.spiffeId) r.spiffe_id = d.spiffeId.toString();
  if (d.accessToken)
    r.access_token = { audience: d.accessToken.audience, scopes: d.accessToken.scopes };
  return r;
}
