// Trust-policy evaluation rate per template (mapping + condition + SPIFFE ID rendering), with a
// baseline of sanitizing the same claims alone.
import { TrustDomain } from '../src/core/spiffe-id.ts';
import { compileTrustPolicy } from '../src/server/sts/policy/compile.ts';
import { sanitizeInput } from '../src/conditions/sanitize.ts';
import { evaluatePolicy } from '../src/server/sts/policy/evaluate.ts';
import {
  githubActionsPolicy,
  gitlabCiPolicy,
  kubernetesPolicy,
} from '../src/server/sts/policy/templates.ts';
import { githubClaims, gitlabClaims, k8sClaims } from '../src/server/sts/policy/claims-fixtures.ts';
import { measure, ratio } from './lib.ts';

const trustDomain = TrustDomain.parse('example.org');
const cases = [
  [
    'github',
    githubActionsPolicy({ trustDomain: 'example.org', owner: 'octo-org', ref: 'refs/heads/main' }),
    githubClaims(),
  ],
  ['gitlab', gitlabCiPolicy({ trustDomain: 'example.org', namespace: 'my-group' }), gitlabClaims()],
  [
    'kubernetes',
    kubernetesPolicy({
      trustDomain: 'example.org',
      issuer: 'https://kubernetes.default.svc.cluster.local',
      namespace: 'payments',
    }),
    k8sClaims(),
  ],
] as const;

for (const [name, policy, claims] of cases) {
  const compiled = compileTrustPolicy(policy, { trustDomain });
  if (!evaluatePolicy(compiled, claims).allowed) throw new Error(`${name}: fixture denied`);
  const base = measure(`sanitize claims (${name})`, () => sanitizeInput(claims, 'claims'), 1000);
  const rate = measure(`evaluate policy (${name})`, () => evaluatePolicy(compiled, claims), 1000);
  ratio(`evaluate/sanitize (${name})`, rate, base);
}
