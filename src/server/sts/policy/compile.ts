// Compiles a trust policy once, at load time: every CEL expression goes through the bounded
// engine (src/conditions/compile.ts: size, depth and cost limits, type check), so evaluation
// never meets a syntax error or an unknown identifier. This file adds what is particular to trust
// policies: which variables each field sees, the types they must have, the output and the TTL.
import { parseDuration } from '../../../core/duration.ts';
import { InvalidArgumentError } from '../../../core/errors.ts';
import type { TrustDomain } from '../../../core/spiffe-id.ts';
import {
  compileExpression,
  conditionEnvironment,
  type CompiledExpression,
} from '../../../conditions/compile.ts';
import { compileSpiffeTemplate, type SpiffeTemplate } from './spiffe-template.ts';
import { parseTrustPolicy, type TrustPolicy } from './trust-policy.ts';

export const DEFAULT_MAX_TTL_MS = 3_600_000;

// The mapping sees only the claims; the condition also sees the mapped attributes (GCP's order:
// mapping, then condition).
const mappingEnv = conditionEnvironment(['assertion']);
const conditionEnv = conditionEnvironment(['assertion', 'attribute']);

export type PolicyOutput =
  | { readonly kind: 'spiffe_id'; readonly template: SpiffeTemplate }
  | {
      readonly kind: 'access_token';
      readonly audience: string;
      readonly scopes: readonly string[];
      /** Requests without a DPoP proof are refused. */
      readonly requireDpop: boolean;
    };

export interface CompiledTrustPolicy {
  readonly policy: TrustPolicy;
  readonly name: string;
  readonly issuer: string;
  readonly mapping: ReadonlyArray<{
    readonly attribute: string;
    readonly expr: CompiledExpression;
  }>;
  readonly condition: CompiledExpression;
  /** The top-level `&&` operands, compiled alone, to name the failing predicate on a denial. */
  readonly conjuncts: readonly CompiledExpression[];
  readonly output: PolicyOutput;
  readonly ttlMs: number;
}

export interface CompileOptions {
  readonly trustDomain: TrustDomain;
  /** A policy's ttl above this is refused (not clamped). Default 1h. */
  readonly maxTtlMs?: number;
}

/** Validates and compiles a policy. Throws InvalidArgumentError naming the field and the cause. */
export function compileTrustPolicy(input: unknown, opts: CompileOptions): CompiledTrustPolicy {
  const policy = parseTrustPolicy(input);
  const what = `trust policy "${policy.name}"`;
  const err = (field: string, msg: string) => new InvalidArgumentError(`${what}: ${field}: ${msg}`);

  const mapping = Object.entries(policy.attribute_mapping).map(([attribute, source]) => {
    const field = `attribute_mapping.${attribute}`;
    const compiled = compileExpression(mappingEnv, source, field, err);
    const type = compiled.type;
    const ok =
      attribute === 'groups'
        ? type === 'dyn' || type === 'list' || type === 'list<string>' || type === 'list<dyn>'
        : type === 'dyn' || type === 'string';
    if (!ok) {
      throw err(
        field,
        `must evaluate to ${attribute === 'groups' ? 'a list of strings' : 'a string'}, not ${type}`,
      );
    }
    return { attribute, expr: compiled.expr };
  });

  const condition = compileExpression(conditionEnv, policy.condition, 'condition', err);
  if (condition.type !== 'bool' && condition.type !== 'dyn') {
    throw err('condition', `must evaluate to bool, not ${condition.type}`);
  }

  let output: PolicyOutput;
  if (policy.spiffe_id !== undefined) {
    const template = compileSpiffeTemplate(
      policy.spiffe_id,
      opts.trustDomain,
      `${what}: spiffe_id`,
    );
    for (const a of template.attributes) {
      if (!(a in policy.attribute_mapping)) {
        throw err('spiffe_id', `placeholder {${a}} names no attribute in attribute_mapping`);
      }
      if (a === 'groups') throw err('spiffe_id', 'placeholder {groups} is a list, not a string');
    }
    output = { kind: 'spiffe_id', template };
  } else {
    const at = policy.access_token;
    if (!at) throw err('access_token', 'missing'); // unreachable: the schema needs one of them
    output = {
      kind: 'access_token',
      audience: at.audience,
      scopes: [...at.scopes],
      requireDpop: at.require_dpop,
    };
  }

  const ttlMs = parseDuration(policy.ttl, `${what}: ttl`);
  const maxTtlMs = opts.maxTtlMs ?? DEFAULT_MAX_TTL_MS;
  if (ttlMs > maxTtlMs) {
    throw err('ttl', `"${policy.ttl}" exceeds the maximum of ${maxTtlMs / 1000}s`);
  }

  return {
    policy,
    name: policy.name,
    issuer: policy.issuer,
    mapping,
    condition: condition.expr,
    conjuncts: condition.conjuncts,
    output,
    ttlMs,
  };
}
