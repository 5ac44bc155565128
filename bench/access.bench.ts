// Access decisions (issue 10 targets): (a) a decision for one client and one server workload with
// a typical condition, as a ratio to evaluating the same compiled CEL condition alone (≥ 0.5);
// (b) the same decision with 10,000 policies in the set as a ratio to 10 (≥ 0.5, i.e. at most
// twice the time). Alternating best-of rounds; every measured call checks its decision.
import type { AccessDecision, AccessPolicy } from '../src/core/access.ts';
import { compileAccessCondition, conditionInput } from '../src/server/access/access-condition.ts';
import {
  buildPolicyIndex,
  decideAccess,
  type PolicyIndex,
} from '../src/server/access/policy-index.ts';
import { allow, deny, request, server } from '../src/server/access/testing/fixtures.ts';
import { compare, loadNote, measure, ratio } from './lib.ts';

const ms = Number(process.argv[2] ?? 2000);
const WEB = 'spiffe://prod.example/ns/payments/sa/web';
const CONDITION =
  'client.attributes["team"] == "payments" && "uid:1000" in client.selectors_by_type["unix"] && ' +
  'now.weekday >= 1 && now.weekday <= 5 && now.hour >= 8 && now.hour < 18';
const req = request(WEB, {
  selectors: [
    { type: 'unix', value: 'uid:1000' },
    { type: 'unix', value: 'gid:1000' },
    { type: 'k8s', value: 'ns:payments' },
  ],
  attributes: { team: 'payments', 'unix.uid': '1000' },
});

/** The set the decision lives in: the deciding policy and its neighbours on `db`. */
function basePolicies(): AccessPolicy[] {
  return [
    allow('web-office-hours', WEB, { condition: CONDITION }),
    allow('batch', 'spiffe://prod.example/ns/*/sa/batch'),
    deny('dev-never', 'spiffe://prod.example/ns/dev/**'),
    allow('ops', 'spiffe://ops.example', { condition: 'now.hour < 6' }),
    allow('api-web', WEB, { server: 'api' }),
    allow('api-all', 'spiffe://prod.example', { server: 'api' }),
    allow('cache-web', WEB, { server: 'cache' }),
    deny('cache-ci', 'spiffe://ci.example', { server: 'cache' }),
    allow('reports', 'spiffe://prod.example/ns/reports/sa/job', { condition: 'now.hour >= 1' }),
    allow('audit', 'spiffe://prod.example/ns/audit/**'),
  ];
}

/** 10,000 policies: the base set plus 9,990 spread over 1,000 server workloads and 20 domains. */
function manyPolicies(): { servers: string[]; policies: AccessPolicy[] } {
  const servers = ['db', 'api', 'cache'];
  const policies = basePolicies();
  for (let s = 0; policies.length < 10_000; s++) {
    const name = `svc-${s}`;
    servers.push(name);
    for (let k = 0; k < 10 && policies.length < 10_000; k++) {
      const td = `td${(s + k) % 20}.example`;
      const id = `spiffe://${td}/ns/team-${s % 97}/sa/app-${k}`;
      const shape = k % 5;
      const client =
        shape === 0 ? `spiffe://${td}` : shape === 1 ? `spiffe://${td}/ns/team-${s % 97}/**` : id;
      policies.push(
        allow(`p-${s}-${k}`, client, {
          server: name,
          ...(k % 3 === 0 ? { condition: 'now.hour >= 8 && now.hour < 18' } : {}),
        }),
      );
    }
  }
  // `db` itself also gets busier: other clients' exact policies and globs of other namespaces.
  for (let i = 0; i < 60; i++)
    policies.push(allow(`db-extra-${i}`, `spiffe://prod.example/ns/team-${i}/sa/app`));
  for (let i = 0; i < 10; i++)
    policies.push(allow(`db-glob-${i}`, `spiffe://prod.example/ns/team-${i}/*/*`));
  policies.splice(10_000);
  return { servers, policies };
}

function build(servers: string[], policies: AccessPolicy[]): PolicyIndex {
  const built = buildPolicyIndex(servers.map(server), policies);
  if (built.skipped.length) throw new Error(`skipped: ${JSON.stringify(built.skipped[0])}`);
  return built.index;
}

function check(d: AccessDecision): void {
  if (!d.allowed || d.policy !== 'web-office-hours')
    throw new Error(`unexpected decision ${JSON.stringify(d)}`);
}

console.log(loadNote('start'));
const small = build(['db', 'api', 'cache'], basePolicies());
const large = manyPolicies();
const big = build(large.servers, large.policies);
console.log(`policies indexed: ${small.size} and ${big.size}`);
check(decideAccess(small, req));
check(decideAccess(big, req));

// (a) The condition alone: compiled once, over the input the decision would build.
const condition = compileAccessCondition(CONDITION)!;
const input = conditionInput(req, {
  text: WEB,
  trustDomain: 'prod.example',
  path: '/ns/payments/sa/web',
});
if (condition.expr.run(input) !== true) throw new Error('condition fixture is false');

const results = await compare(
  () =>
    measure(
      'CEL condition alone',
      () => {
        if (condition.expr.run(input) !== true) throw new Error('false');
      },
      ms,
    ),
  [
    () => measure('decision, 10 policies', () => check(decideAccess(small, req)), ms),
    () => measure('decision, 10,000 policies', () => check(decideAccess(big, req)), ms),
  ],
);
const [decision = 0, decision10k = 0] = results;
ratio('decision / CEL condition alone', decision, results.baseline, 0.5);
ratio('decision 10,000 / 10 policies (rate)', decision10k, decision, 0.5);
console.log(loadNote('end'));
