// Evaluates a compiled trust policy against the claims of an already verified token. Pure: no
// clock, no I/O — signature, iss/aud/exp checks belong to the exchange endpoint; this decides what
// the claims are allowed to become. Claims are untrusted, so they are bounded and copied first,
// and every failure (hostile claims, a CEL runtime error, a bad mapped value) is a denial that
// names the failing field; evaluatePolicy never throws.
import type { SpiffeId } from '../../../core/spiffe-id.ts';
import { celMessage, type CompiledTrustPolicy } from './compile.ts';

export const MAX_CLAIMS_BYTES = 64 * 1024;
export const MAX_CLAIMS_DEPTH = 16;
export const MAX_CLAIMS_VALUES = 4096;
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
    assertion = sanitizeClaims(claims);
  } catch (e) {
    return deny('claims', e instanceof ClaimsError ? e.message : 'claims are not a JSON object');
  }
  // The exchange verifies the token against this issuer's keys; checking again here keeps a policy
  // from ever being applied to another issuer's claims by a wiring mistake.
  if (assertion['iss'] !== compiled.issuer) {
    return deny('issuer', `token issuer ${describe(assertion['iss'])} is not ${compiled.issuer}`);
  }

  let total = 0;
  for (const { attribute, expr } of compiled.mapping) {
    let value: unknown;
    try {
      value = expr.run({ assertion });
    } catch (e) {
      return deny(expr.field, `${expr.source}: ${celMessage(e)}`);
    }
    const checked = checkAttribute(attribute, value);
    if ('error' in checked) return deny(expr.field, `${expr.source}: ${checked.error}`);
    attributes[attribute] = checked.value;
    total += checked.bytes;
    if (total > MAX_ATTRIBUTES_BYTES) {
      return deny(expr.field, `mapped attributes exceed ${MAX_ATTRIBUTES_BYTES} bytes in total`);
    }
  }

  const context = { assertion, attribute: { ...attributes } };
  let result: unknown;
  try {
    result = compiled.condition.run(context);
  } catch (e) {
    return deny('condition', `${celMessage(e)}`);
  }
  if (result !== true) {
    if (typeof result !== 'boolean')
      return deny('condition', `evaluated to ${describe(result)}, not bool`);
    return deny(...explainFalse(compiled, context));
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

/** Names the first top-level `&&` operand that is not true (the whole condition decided). */
function explainFalse(
  compiled: CompiledTrustPolicy,
  context: Record<string, unknown>,
): [string, string] {
  for (const c of compiled.conjuncts) {
    let v: unknown;
    try {
      v = c.run(context);
    } catch (e) {
      return [`condition: ${c.source}`, celMessage(e)];
    }
    if (v !== true) return [`condition: ${c.source}`, `${c.source} is ${describe(v)}`];
  }
  return ['condition', `${compiled.condition.source} is false`];
}

type Checked = { value: AttributeValue; bytes: number } | { error: string };

function checkAttribute(attribute: string, value: unknown): Checked {
  const max = attribute === 'subject' ? MAX_SUBJECT_BYTES : MAX_ATTRIBUTE_BYTES;
  if (attribute === 'groups') {
    if (!Array.isArray(value))
      return { error: `evaluated to ${describe(value)}, not a list of strings` };
    if (value.length > MAX_GROUPS) return { error: `more than ${MAX_GROUPS} groups` };
    let bytes = 0;
    for (const g of value as unknown[]) {
      if (typeof g !== 'string') return { error: `group ${describe(g)} is not a string` };
      const n = Buffer.byteLength(g, 'utf8');
      if (n > MAX_ATTRIBUTE_BYTES)
        return { error: `a group is longer than ${MAX_ATTRIBUTE_BYTES} bytes` };
      bytes += n;
    }
    return { value: [...(value as string[])], bytes };
  }
  if (typeof value !== 'string') return { error: `evaluated to ${describe(value)}, not a string` };
  if (attribute === 'subject' && value === '') return { error: 'the subject is empty' };
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > max) return { error: `longer than ${max} bytes` };
  return { value, bytes };
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'absent';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? v.slice(0, 57) + '...' : v);
  if (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return 'a list';
  return `a ${typeof v === 'object' ? 'map' : typeof v}`;
}

class ClaimsError extends Error {}

/**
 * Copies claims into CEL-ready values, refusing anything that is not JSON-shaped or too big:
 * ≈ JSON size ≤ 64 KiB, depth ≤ 16, ≤ 4096 values. Objects become null-prototype records (a
 * "__proto__" claim stays data), safe integers become CEL ints (BigInt) so `assertion.runner_id
 * == 42` works, other numbers stay doubles. The walk stops at the first bound it crosses, so a
 * huge or cyclic input costs no more than the bounds.
 */
export function sanitizeClaims(claims: unknown): Record<string, unknown> {
  let bytes = 0;
  let values = 0;
  const charge = (n: number) => {
    bytes += n;
    values++;
    if (bytes > MAX_CLAIMS_BYTES) throw new ClaimsError(`claims exceed ${MAX_CLAIMS_BYTES} bytes`);
    if (values > MAX_CLAIMS_VALUES)
      throw new ClaimsError(`claims have more than ${MAX_CLAIMS_VALUES} values`);
  };
  const copy = (v: unknown, depth: number): unknown => {
    if (depth > MAX_CLAIMS_DEPTH)
      throw new ClaimsError(`claims nest deeper than ${MAX_CLAIMS_DEPTH} levels`);
    switch (typeof v) {
      case 'string':
        charge(v.length + 2);
        return v;
      case 'boolean':
        charge(5);
        return v;
      case 'number':
        if (!Number.isFinite(v)) throw new ClaimsError('claims hold a non-finite number');
        charge(String(v).length);
        return Number.isSafeInteger(v) ? BigInt(v) : v;
      case 'object': {
        if (v === null) {
          charge(4);
          return null;
        }
        if (Array.isArray(v)) {
          charge(2);
          const out: unknown[] = [];
          for (let i = 0; i < v.length; i++) {
            charge(1);
            out.push(copy(v[i], depth + 1));
          }
          return out;
        }
        const proto = Object.getPrototypeOf(v) as unknown;
        if (proto !== Object.prototype && proto !== null) {
          throw new ClaimsError('claims hold a value that is not JSON');
        }
        charge(2);
        const out = Object.create(null) as Record<string, unknown>;
        for (const k of Object.keys(v)) {
          charge(k.length + 4);
          out[k] = copy((v as Record<string, unknown>)[k], depth + 1);
        }
        return out;
      }
      default:
        throw new ClaimsError(`claims hold a ${typeof v}, which is not JSON`);
    }
  };
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
    throw new ClaimsError('claims are not a JSON object');
  }
  return copy(claims, 1) as Record<string, unknown>;
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
