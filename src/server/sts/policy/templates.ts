// Ready-made policies for the common CI and cluster issuers. Each returns a plain policy document
// (TrustPolicyInput) that operators can print, edit and store; compile it with compileTrustPolicy.
// Inputs are validated and embedded as CEL string literals via JSON.stringify, whose escapes are
// a subset of CEL's, so no input can change the expression's structure.
import { InvalidArgumentError } from '../../../core/errors.ts';
import { TrustDomain } from '../../../core/spiffe-id.ts';
import type { TrustPolicyInput } from './trust-policy.ts';

export const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com';
export const GITLAB_ISSUER = 'https://gitlab.com';

const lit = (s: string) => JSON.stringify(s);

function check(value: string, re: RegExp, what: string): string {
  if (!re.test(value))
    throw new InvalidArgumentError(`${what}: invalid value "${value.slice(0, 80)}"`);
  return value;
}

const REF_RE = /^refs\/(heads|tags|pull)\/[^\s\\"]{1,200}$/;

function policyName(given: string | undefined, parts: string[]): string {
  if (given !== undefined) return given; // the schema validates it
  return parts
    .join('-')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 64)
    .replace(/-$/, '');
}

export interface GithubActionsOptions {
  trustDomain: string;
  /** The organisation or user owning the repositories (repository_owner). */
  owner: string;
  /** "repo" or "owner/repo"; when unset every repository of the owner is admitted. */
  repository?: string;
  /** Full ref, e.g. "refs/heads/main". */
  ref?: string;
  environment?: string;
  name?: string;
  ttl?: string;
}

/** GitHub Actions OIDC tokens → spiffe://<td>/ci/github/<owner>/<repo>. */
export function githubActionsPolicy(o: GithubActionsOptions): TrustPolicyInput {
  const td = TrustDomain.parse(o.trustDomain);
  const owner = check(o.owner, /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/, 'github owner');
  const conds = [
    `assertion.repository_owner == ${lit(owner)}`,
    // Redundant with repository_owner on real tokens; stated so the ID prefix is pinned by the policy.
    `assertion.repository.startsWith(${lit(owner + '/')})`,
  ];
  if (o.repository !== undefined) {
    const repo = o.repository.includes('/') ? o.repository : `${owner}/${o.repository}`;
    check(repo, /^[A-Za-z0-9-]+\/[A-Za-z0-9._-]{1,100}$/, 'github repository');
    if (!repo.startsWith(owner + '/')) {
      throw new InvalidArgumentError(`github repository: "${repo}" is not owned by "${owner}"`);
    }
    conds.push(`assertion.repository == ${lit(repo)}`);
  }
  if (o.ref !== undefined)
    conds.push(`assertion.ref == ${lit(check(o.ref, REF_RE, 'github ref'))}`);
  if (o.environment !== undefined) {
    check(o.environment, /^[^\s\\"]{1,255}$/, 'github environment');
    conds.push(`assertion.environment == ${lit(o.environment)}`);
  }
  return {
    name: policyName(o.name, ['github', owner, o.repository?.split('/').pop() ?? '']),
    issuer: GITHUB_ISSUER,
    condition: conds.join(' && '),
    attribute_mapping: {
      subject: 'assertion.sub',
      repository: 'assertion.repository',
      repository_owner: 'assertion.repository_owner',
      ref: 'assertion.ref',
      workflow: 'assertion.workflow',
    },
    spiffe_id: `${td.id}/ci/github/{repository*}`,
    ...(o.ttl !== undefined ? { ttl: o.ttl } : {}),
  };
}

export interface GitlabCiOptions {
  trustDomain: string;
  /** The group (or user) namespace, e.g. "my-group" or "my-group/sub"; matched exactly. */
  namespace: string;
  /** Full project path, e.g. "my-group/my-project"; must lie in `namespace`. */
  project?: string;
  ref?: string;
  refType?: 'branch' | 'tag';
  /** Self-managed instance URL; default https://gitlab.com. */
  issuer?: string;
  name?: string;
  ttl?: string;
}

/** GitLab CI ID tokens → spiffe://<td>/ci/gitlab/<group>/<project>. */
export function gitlabCiPolicy(o: GitlabCiOptions): TrustPolicyInput {
  const td = TrustDomain.parse(o.trustDomain);
  const path = /^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;
  const ns = check(o.namespace, path, 'gitlab namespace');
  const conds = [
    `assertion.namespace_path == ${lit(ns)}`,
    `assertion.project_path.startsWith(${lit(ns + '/')})`,
  ];
  if (o.project !== undefined) {
    check(o.project, path, 'gitlab project');
    if (!o.project.startsWith(ns + '/') || o.project.slice(ns.length + 1).includes('/')) {
      throw new InvalidArgumentError(`gitlab project: "${o.project}" is not directly in "${ns}"`);
    }
    conds.push(`assertion.project_path == ${lit(o.project)}`);
  }
  if (o.ref !== undefined) {
    conds.push(`assertion.ref == ${lit(check(o.ref, /^[^\s\\"]{1,255}$/, 'gitlab ref'))}`);
  }
  if (o.refType !== undefined) {
    conds.push(
      `assertion.ref_type == ${lit(check(o.refType, /^(branch|tag)$/, 'gitlab ref type'))}`,
    );
  }
  return {
    name: policyName(o.name, ['gitlab', ns, o.project?.split('/').pop() ?? '']),
    issuer: o.issuer ?? GITLAB_ISSUER,
    condition: conds.join(' && '),
    attribute_mapping: {
      subject: 'assertion.sub',
      project_path: 'assertion.project_path',
      namespace_path: 'assertion.namespace_path',
      ref: 'assertion.ref',
      ref_type: 'assertion.ref_type',
    },
    spiffe_id: `${td.id}/ci/gitlab/{project_path*}`,
    ...(o.ttl !== undefined ? { ttl: o.ttl } : {}),
  };
}

export interface KubernetesOptions {
  trustDomain: string;
  /** The cluster's service-account issuer (--service-account-issuer). */
  issuer: string;
  namespace: string;
  /** When unset every service account of the namespace is admitted. */
  serviceAccount?: string;
  name?: string;
  ttl?: string;
}

/** Kubernetes projected service-account tokens → spiffe://<td>/k8s/<ns>/sa/<sa>. */
export function kubernetesPolicy(o: KubernetesOptions): TrustPolicyInput {
  const td = TrustDomain.parse(o.trustDomain);
  const dns1123 = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
  const ns = check(o.namespace, dns1123, 'kubernetes namespace');
  const k8s = 'assertion["kubernetes.io"]';
  const conds = [`${k8s}.namespace == ${lit(ns)}`];
  if (o.serviceAccount !== undefined) {
    const sa = check(o.serviceAccount, dns1123, 'kubernetes service account');
    conds.push(`${k8s}.serviceaccount.name == ${lit(sa)}`);
  }
  // The API server writes sub from the same fields; insisting they agree costs nothing.
  conds.push(
    `assertion.sub == "system:serviceaccount:" + ${k8s}.namespace + ":" + ${k8s}.serviceaccount.name`,
  );
  return {
    name: policyName(o.name, ['k8s', ns, o.serviceAccount ?? '']),
    issuer: o.issuer,
    condition: conds.join(' && '),
    attribute_mapping: {
      subject: 'assertion.sub',
      namespace: `${k8s}.namespace`,
      serviceaccount: `${k8s}.serviceaccount.name`,
    },
    spiffe_id: `${td.id}/k8s/{namespace}/sa/{serviceaccount}`,
    ...(o.ttl !== undefined ? { ttl: o.ttl } : {}),
  };
}
