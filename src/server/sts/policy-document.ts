// Trust policies from templates (admin API and CLI `--template`): a request names a template and
// its parameters, and gets the full policy document the template writes (policy/templates.ts).
import { InvalidArgumentError } from '../../core/errors.ts';
import {
  GITHUB_ISSUER,
  githubActionsPolicy,
  gitlabCiPolicy,
  kubernetesPolicy,
} from './policy/templates.ts';
import type { TrustPolicyInput } from './policy/trust-policy.ts';

export const TEMPLATES = ['github', 'gitlab', 'kubernetes'] as const;
export type TemplateName = (typeof TEMPLATES)[number];

export interface PolicyInput {
  /** A full policy document (docs/trust-policies.md), or empty fields with a template. */
  document?: Record<string, unknown>;
  template?: string;
  templateParams?: Readonly<Record<string, string>>;
  /** Access-token policies: its tokens may call /introspect and /revoke. */
  introspectionClient?: boolean;
}

/**
 * The policy document a request describes (a template expanded), not yet validated: the
 * compiler checks it. A template's parameters are checked here, by name.
 */
export function policyDocument(
  input: PolicyInput,
  trustDomain: string,
): { doc: Record<string, unknown>; template: string } {
  const doc = { ...(input.document ?? {}) };
  if (!input.template) return { doc, template: '' };
  const t = input.template as TemplateName;
  if (!TEMPLATES.includes(t))
    throw new InvalidArgumentError(`template: must be one of ${TEMPLATES.join(', ')}`);
  const p = { ...(input.templateParams ?? {}) };
  const allowed: Record<TemplateName, string[]> = {
    github: ['owner', 'repository', 'ref', 'environment'],
    gitlab: ['namespace', 'project', 'ref', 'ref_type'],
    kubernetes: ['namespace', 'service_account'],
  };
  for (const k of Object.keys(p))
    if (!allowed[t].includes(k))
      throw new InvalidArgumentError(
        `template ${t}: unknown parameter "${k.slice(0, 64)}" (allowed: ${allowed[t].join(', ')})`,
      );
  const need = (k: string): string => {
    const v = p[k];
    if (!v) throw new InvalidArgumentError(`template ${t}: parameter "${k}" is required`);
    return v;
  };
  const opt = <K extends string>(k: string, as: K): Partial<Record<K, string>> =>
    p[k] ? ({ [as]: p[k] } as Record<K, string>) : {};
  const common = {
    trustDomain: trustDomain,
    ...(typeof doc.name === 'string' ? { name: doc.name } : {}),
    ...(typeof doc.ttl === 'string' ? { ttl: doc.ttl } : {}),
  };
  const issuer = typeof doc.issuer === 'string' ? doc.issuer : undefined;
  let generated: TrustPolicyInput;
  if (t === 'github') {
    generated = githubActionsPolicy({
      ...common,
      owner: need('owner'),
      ...opt('repository', 'repository'),
      ...opt('ref', 'ref'),
      ...opt('environment', 'environment'),
    });
    // GitHub Enterprise Server has its own issuer; the template's checks still fit.
    if (issuer !== undefined && issuer !== GITHUB_ISSUER) generated = { ...generated, issuer };
  } else if (t === 'gitlab') {
    const refType = p.ref_type;
    if (refType !== undefined && refType !== 'branch' && refType !== 'tag')
      throw new InvalidArgumentError('template gitlab: ref_type must be branch or tag');
    generated = gitlabCiPolicy({
      ...common,
      namespace: need('namespace'),
      ...opt('project', 'project'),
      ...opt('ref', 'ref'),
      ...(refType ? { refType } : {}),
      ...(issuer !== undefined ? { issuer } : {}),
    });
  } else {
    if (issuer === undefined)
      throw new InvalidArgumentError('template kubernetes: issuer is required');
    generated = kubernetesPolicy({
      ...common,
      issuer,
      namespace: need('namespace'),
      ...opt('service_account', 'serviceAccount'),
    });
  }
  for (const k of ['condition', 'attribute_mapping', 'spiffe_id', 'access_token'])
    if (doc[k] !== undefined)
      throw new InvalidArgumentError(`template ${t}: ${k} comes from the template`);
  return { doc: generated as unknown as Record<string, unknown>, template: t };
}
