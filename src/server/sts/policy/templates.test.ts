import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../../../core/errors.ts';
import { TrustDomain } from '../../../core/spiffe-id.ts';
import { compileTrustPolicy } from './compile.ts';
import { dryRunReport, evaluatePolicy, type PolicyDecision } from './evaluate.ts';
import { githubActionsPolicy, gitlabCiPolicy, kubernetesPolicy } from './templates.ts';

const trustDomain = TrustDomain.parse('example.org');

import { githubClaims, gitlabClaims, K8S_ISSUER, k8sClaims } from './claims-fixtures.ts';

function allowed(d: PolicyDecision): Extract<PolicyDecision, { allowed: true }> {
  if (!d.allowed) assert.fail(`denied: ${d.failing}: ${d.reason}`);
  return d;
}
function denied(d: PolicyDecision): Extract<PolicyDecision, { allowed: false }> {
  if (d.allowed) assert.fail('allowed');
  return d;
}

describe('githubActionsPolicy', () => {
  const compiled = compileTrustPolicy(
    githubActionsPolicy({ trustDomain: 'example.org', owner: 'octo-org', ref: 'refs/heads/main' }),
    { trustDomain },
  );

  it('admits a real-shaped token of the org and maps its attributes', () => {
    const d = allowed(evaluatePolicy(compiled, githubClaims()));
    assert.equal(d.spiffeId?.toString(), 'spiffe://example.org/ci/github/octo-org/octo-repo');
    assert.deepEqual(d.attributes, {
      subject: 'repo:octo-org/octo-repo:environment:prod',
      repository: 'octo-org/octo-repo',
      repository_owner: 'octo-org',
      ref: 'refs/heads/main',
      workflow: 'example-workflow',
    });
    assert.equal(d.ttlMs, 15 * 60_000);
    assert.equal(compiled.name, 'github-octo-org');
  });

  it('refuses another owner, naming the failing predicate', () => {
    const d = denied(
      evaluatePolicy(compiled, {
        ...githubClaims(),
        repository_owner: 'evil-org',
        repository: 'evil-org/octo-repo',
      }),
    );
    assert.equal(d.failing, 'condition: assertion.repository_owner == "octo-org"');
    assert.equal(d.reason, 'assertion.repository_owner == "octo-org" is false');
    assert.equal(d.attributes['repository'], 'evil-org/octo-repo');
  });

  it('refuses another ref', () => {
    const d = denied(evaluatePolicy(compiled, { ...githubClaims(), ref: 'refs/heads/feature' }));
    assert.equal(d.failing, 'condition: assertion.ref == "refs/heads/main"');
  });

  it('refuses a repository trying path traversal', () => {
    const d = denied(evaluatePolicy(compiled, { ...githubClaims(), repository: 'octo-org/../b' }));
    assert.equal(d.failing, 'spiffe_id');
    assert.equal(
      d.reason,
      'trust policy "github-octo-org": spiffe_id: {repository*} value "octo-org/../b" is not a "/"-separated list of path segments ([A-Za-z0-9._-]+, not "." or "..")',
    );
  });

  it('refuses a token with a missing claim as a denial, not a throw', () => {
    const claims = githubClaims();
    delete claims['workflow'];
    const d = denied(evaluatePolicy(compiled, claims));
    assert.equal(d.failing, 'attribute_mapping.workflow');
    assert.equal(d.reason, 'assertion.workflow: No such key: workflow');
  });

  it('refuses a token from another issuer', () => {
    const d = denied(evaluatePolicy(compiled, { ...githubClaims(), iss: 'https://evil.example' }));
    assert.equal(d.failing, 'issuer');
    assert.equal(
      d.reason,
      'token issuer "https://evil.example" is not https://token.actions.githubusercontent.com',
    );
  });

  it('pins repository and environment when asked', () => {
    const p = compileTrustPolicy(
      githubActionsPolicy({
        trustDomain: 'example.org',
        owner: 'octo-org',
        repository: 'octo-repo',
        environment: 'prod',
      }),
      { trustDomain },
    );
    assert.equal(p.name, 'github-octo-org-octo-repo');
    allowed(evaluatePolicy(p, githubClaims()));
    const d = denied(evaluatePolicy(p, { ...githubClaims(), environment: 'staging' }));
    assert.equal(d.failing, 'condition: assertion.environment == "prod"');
    const other = denied(evaluatePolicy(p, { ...githubClaims(), repository: 'octo-org/other' }));
    assert.equal(other.failing, 'condition: assertion.repository == "octo-org/octo-repo"');
  });

  it('validates its inputs', () => {
    assert.throws(
      () => githubActionsPolicy({ trustDomain: 'example.org', owner: 'a" || true || "' }),
      new InvalidArgumentError('github owner: invalid value "a" || true || ""'),
    );
    assert.throws(
      () => githubActionsPolicy({ trustDomain: 'example.org', owner: 'o', repository: 'x/y' }),
      new InvalidArgumentError('github repository: "x/y" is not owned by "o"'),
    );
  });
});

describe('gitlabCiPolicy', () => {
  const compiled = compileTrustPolicy(
    gitlabCiPolicy({ trustDomain: 'example.org', namespace: 'my-group', refType: 'branch' }),
    { trustDomain },
  );

  it('admits a real-shaped token of the group', () => {
    const d = allowed(evaluatePolicy(compiled, gitlabClaims()));
    assert.equal(d.spiffeId?.toString(), 'spiffe://example.org/ci/gitlab/my-group/my-project');
    assert.equal(d.attributes['ref_type'], 'branch');
  });

  it('refuses another group, another ref type, and traversal', () => {
    const other = denied(
      evaluatePolicy(compiled, {
        ...gitlabClaims(),
        namespace_path: 'other',
        project_path: 'other/p',
      }),
    );
    assert.equal(other.failing, 'condition: assertion.namespace_path == "my-group"');
    const tag = denied(evaluatePolicy(compiled, { ...gitlabClaims(), ref_type: 'tag' }));
    assert.equal(tag.failing, 'condition: assertion.ref_type == "branch"');
    const trav = denied(
      evaluatePolicy(compiled, { ...gitlabClaims(), project_path: 'my-group/../../x' }),
    );
    assert.equal(trav.failing, 'spiffe_id');
  });

  it('supports a self-managed issuer and a pinned project', () => {
    const p = compileTrustPolicy(
      gitlabCiPolicy({
        trustDomain: 'example.org',
        namespace: 'my-group',
        project: 'my-group/my-project',
        ref: 'main',
        issuer: 'https://gitlab.example.com',
      }),
      { trustDomain },
    );
    allowed(evaluatePolicy(p, { ...gitlabClaims(), iss: 'https://gitlab.example.com' }));
    denied(evaluatePolicy(p, gitlabClaims())); // gitlab.com token
    const d = denied(
      evaluatePolicy(p, { ...gitlabClaims(), iss: 'https://gitlab.example.com', ref: 'dev' }),
    );
    assert.equal(d.failing, 'condition: assertion.ref == "main"');
  });
});

describe('kubernetesPolicy', () => {
  const compiled = compileTrustPolicy(
    kubernetesPolicy({ trustDomain: 'example.org', issuer: K8S_ISSUER, namespace: 'payments' }),
    { trustDomain },
  );

  it('admits a projected service-account token', () => {
    const d = allowed(evaluatePolicy(compiled, k8sClaims()));
    assert.equal(d.spiffeId?.toString(), 'spiffe://example.org/k8s/payments/sa/api');
    assert.deepEqual(dryRunReport(d), {
      decision: 'allow',
      policy: 'k8s-payments',
      attributes: {
        subject: 'system:serviceaccount:payments:api',
        namespace: 'payments',
        serviceaccount: 'api',
      },
      spiffe_id: 'spiffe://example.org/k8s/payments/sa/api',
      ttl_seconds: 900,
    });
  });

  it('refuses another namespace, another service account, a mismatched sub', () => {
    const claims = k8sClaims();
    (claims['kubernetes.io'] as { namespace: string }).namespace = 'default';
    claims['sub'] = 'system:serviceaccount:default:api';
    const d = denied(evaluatePolicy(compiled, claims));
    assert.equal(d.failing, 'condition: assertion["kubernetes.io"].namespace == "payments"');
    assert.deepEqual(dryRunReport(d), {
      decision: 'deny',
      policy: 'k8s-payments',
      failing: 'condition: assertion["kubernetes.io"].namespace == "payments"',
      reason: 'assertion["kubernetes.io"].namespace == "payments" is false',
      attributes: {
        subject: 'system:serviceaccount:default:api',
        namespace: 'default',
        serviceaccount: 'api',
      },
    });

    const pinned = compileTrustPolicy(
      kubernetesPolicy({
        trustDomain: 'example.org',
        issuer: K8S_ISSUER,
        namespace: 'payments',
        serviceAccount: 'worker',
      }),
      { trustDomain },
    );
    assert.equal(
      denied(evaluatePolicy(pinned, k8sClaims())).failing,
      'condition: assertion["kubernetes.io"].serviceaccount.name == "worker"',
    );
    const forged = denied(
      evaluatePolicy(compiled, { ...k8sClaims(), sub: 'system:serviceaccount:payments:admin' }),
    );
    assert.match(forged.failing, /^condition: assertion\.sub == "system:serviceaccount:"/);
  });

  it('refuses a token without kubernetes.io claims', () => {
    const claims = k8sClaims();
    delete claims['kubernetes.io'];
    const d = denied(evaluatePolicy(compiled, claims));
    assert.equal(d.failing, 'attribute_mapping.namespace');
    assert.equal(d.reason, 'assertion["kubernetes.io"].namespace: No such key: kubernetes.io');
  });
});
