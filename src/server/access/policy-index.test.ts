import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AccessDecision, AccessPolicy } from '../../core/access.ts';
import { buildPolicyIndex, decideAccess } from './policy-index.ts';
import {
  allow,
  deny,
  MONDAY_MORNING,
  request,
  server,
  type RequestFacts,
} from './testing/fixtures.ts';

const WEB = 'spiffe://td/ns/prod/sa/web';

function decide(policies: AccessPolicy[], id = WEB, facts: RequestFacts = {}): AccessDecision {
  const { index, skipped } = buildPolicyIndex([server('db'), server('api')], policies);
  assert.deepEqual(skipped, []);
  return decideAccess(index, request(id, facts));
}

const allowed = (policy: string, credentialProvider = 'db-password'): AccessDecision => ({
  allowed: true,
  reason: 'allowed',
  policy,
  credentialProvider,
  failedCondition: '',
});
const denied = (
  reason: AccessDecision['reason'],
  policy = '',
  failedCondition = '',
): AccessDecision => ({ allowed: false, reason, policy, credentialProvider: '', failedCondition });

describe('decideAccess: order of evaluation', () => {
  it('denies by default', () => {
    assert.deepEqual(decide([]), denied('no-matching-policy'));
    assert.deepEqual(
      decide([allow('other', 'spiffe://td/ns/dev/sa/web')]),
      denied('no-matching-policy'),
    );
    assert.deepEqual(decide([allow('api', WEB, { server: 'api' })]), denied('no-matching-policy'));
  });

  it('names an unknown server workload', () => {
    assert.deepEqual(
      decide([allow('a', WEB)], WEB, { server: 'nope' }),
      denied('unknown-server-workload'),
    );
  });

  it('allows by an exact, glob or trust-domain pattern', () => {
    assert.deepEqual(decide([allow('a', WEB)]), allowed('a'));
    assert.deepEqual(decide([allow('a', 'spiffe://td/ns/*/sa/web')]), allowed('a'));
    assert.deepEqual(decide([allow('a', 'spiffe://td/ns/**')]), allowed('a'));
    assert.deepEqual(decide([allow('a', 'spiffe://td')]), allowed('a'));
    assert.deepEqual(decide([allow('a', 'spiffe://other')]), denied('no-matching-policy'));
  });

  it('a matching deny wins over every allow, however specific', () => {
    const d = decide([allow('exact', WEB), deny('all', 'spiffe://td')]);
    assert.deepEqual(d, denied('denied-by-policy', 'all'));
  });

  it('a deny whose condition is false does not apply', () => {
    const d = decide([
      allow('exact', WEB),
      deny('nights', 'spiffe://td', { condition: 'now.hour < 6' }),
    ]);
    assert.deepEqual(d, allowed('exact'));
  });

  it('among denies the most specific names the decision', () => {
    const d = decide([deny('b-domain', 'spiffe://td'), deny('a-glob', 'spiffe://td/ns/**')]);
    assert.deepEqual(d, denied('denied-by-policy', 'a-glob'));
  });

  it('the most specific allow decides; ties go to the first name', () => {
    const ps = [
      allow('domain', 'spiffe://td', { credentialProvider: 'p-domain' }),
      allow('glob', 'spiffe://td/ns/*/sa/web', { credentialProvider: 'p-glob' }),
      allow('exact', WEB, { credentialProvider: 'p-exact' }),
    ];
    assert.deepEqual(decide(ps), allowed('exact', 'p-exact'));
    assert.deepEqual(decide(ps.slice(0, 2)), allowed('glob', 'p-glob'));
    const tie = [
      allow('zeta', 'spiffe://td/ns/*/sa/web', { credentialProvider: 'z' }),
      allow('alpha', 'spiffe://td/ns/prod/sa/*', { credentialProvider: 'a' }),
    ];
    assert.deepEqual(decide(tie), allowed('alpha', 'a'));
  });

  it('a more specific allow whose condition fails falls through to a less specific one', () => {
    const ps = [
      allow('exact', WEB, { condition: 'now.hour >= 22', credentialProvider: 'night' }),
      allow('domain', 'spiffe://td', { credentialProvider: 'day' }),
    ];
    assert.deepEqual(decide(ps), allowed('domain', 'day'));
  });

  it('allows that matched with false conditions: condition-false, explained by the most specific', () => {
    const ps = [
      allow('domain', 'spiffe://td', { condition: 'client.attributes["team"] == "ops"' }),
      allow('exact', WEB, {
        condition: 'now.weekday >= 1 && now.weekday <= 5 && now.hour >= 12 && now.hour < 18',
      }),
    ];
    assert.deepEqual(
      decide(ps, WEB, { attributes: { team: 'dev' } }),
      denied('condition-false', 'exact', 'now.hour >= 12'),
    );
  });

  it('a condition that errors counts as false for an allow, explained', () => {
    const d = decide([allow('a', WEB, { condition: 'client.attributes["unix.uid"] == "1000"' })]);
    assert.deepEqual(
      d,
      denied(
        'condition-false',
        'a',
        'client.attributes["unix.uid"] == "1000" (error: No such key: unix.uid)',
      ),
    );
  });

  it('a deny whose condition errors applies: an error never opens access', () => {
    const d = decide([
      allow('a', WEB),
      deny('d', 'spiffe://td', { condition: 'client.attributes["risk"] == "high"' }),
    ]);
    assert.deepEqual(
      d,
      denied(
        'denied-by-policy',
        'd',
        'client.attributes["risk"] == "high" (error: No such key: risk)',
      ),
    );
  });

  it('a condition that evaluates to a non-bool never grants', () => {
    assert.deepEqual(
      decide([allow('a', WEB, { condition: 'now.hour' })]),
      denied('condition-false', 'a', 'now.hour (error: not a bool)'),
    );
    assert.deepEqual(
      decide([allow('a', WEB), deny('d', WEB, { condition: 'now.hour' })]),
      denied('denied-by-policy', 'd', 'now.hour (error: not a bool)'),
    );
  });

  it('an unparsable client ID matches nothing', () => {
    assert.deepEqual(
      decide([allow('a', 'spiffe://td')], 'spiffe://TD/x'),
      denied('no-matching-policy'),
    );
  });

  it('a trust-domain ID is not a workload', () => {
    assert.deepEqual(
      decide([allow('a', 'spiffe://td')], 'spiffe://td'),
      denied('no-matching-policy'),
    );
  });
});

describe('decideAccess: conditions', () => {
  const hours = 'now.weekday >= 1 && now.weekday <= 5 && now.hour >= 8 && now.hour < 18';
  const at = (iso: string) => Date.parse(iso);

  it('a decision where a matching condition reads `request` is marked request-dependent', () => {
    const get = { method: 'GET', path: '/v1/x', host: 'db' };
    const ps = [
      allow('reads', WEB, { condition: 'request.method == "GET"' }),
      allow('any', 'spiffe://td', { credentialProvider: 'other' }),
    ];
    assert.deepEqual(decide(ps, WEB, { request: get }), {
      ...allowed('reads'),
      requestDependent: true,
    });
    assert.deepEqual(decide(ps, WEB, { request: { ...get, method: 'POST' } }), {
      ...allowed('any', 'other'),
      requestDependent: true,
    });
    // Named as a field or a string, `request` is not the variable.
    const field = [allow('f', WEB, { condition: '"request" != client.spiffe_id' })];
    assert.deepEqual(decide(field, WEB), allowed('f'));
    // Another client's policies do not make this one's decision request-dependent.
    assert.deepEqual(decide(ps, 'spiffe://td/other'), allowed('any', 'other'));
  });

  it('time windows and weekdays come from the request time (UTC)', () => {
    const ps = [allow('office', WEB, { condition: hours })];
    assert.equal(decide(ps, WEB, { at: MONDAY_MORNING }).allowed, true);
    assert.deepEqual(
      decide(ps, WEB, { at: at('2026-12-07T18:00:00Z') }),
      denied('condition-false', 'office', 'now.hour < 18'),
    );
    assert.deepEqual(
      decide(ps, WEB, { at: at('2026-12-06T10:00:00Z') }),
      denied('condition-false', 'office', 'now.weekday >= 1'),
    );
    assert.deepEqual(
      decide(ps, WEB, { at: at('2026-12-12T10:00:00Z') }),
      denied('condition-false', 'office', 'now.weekday <= 5'),
    );
  });

  it('now has unix, rfc3339, date and minute', () => {
    const c =
      'now.unix == 1796639400 && now.rfc3339 == "2026-12-07T10:30:00Z" && now.date == "2026-12-07" && now.minute == 30';
    assert.equal(decide([allow('a', WEB, { condition: c })]).allowed, true);
    assert.equal(
      decide([allow('a', WEB, { condition: 'now.date >= "2027-01-01"' })]).allowed,
      false,
    );
  });

  it('client facts: ID parts, selectors, selectors by type, attributes', () => {
    const c = [
      'client.spiffe_id == "spiffe://td/ns/prod/sa/web"',
      'client.trust_domain == "td"',
      'client.path == "/ns/prod/sa/web"',
      '"unix:uid:1000" in client.selectors',
      '"uid:1000" in client.selectors_by_type["unix"]',
      'size(client.selectors_by_type["k8s"]) == 0',
      '"sha256:abc" in client.selectors_by_type["custom"]',
      'client.attributes["unix.uid"] == "1000"',
    ].join(' && ');
    const facts: RequestFacts = {
      selectors: [
        { type: 'unix', value: 'uid:1000' },
        { type: 'custom', value: 'sha256:abc' },
      ],
      attributes: { 'unix.uid': '1000' },
    };
    assert.deepEqual(decide([allow('a', WEB, { condition: c })], WEB, facts), allowed('a'));
  });

  it('request facts, empty strings when not HTTP', () => {
    const c =
      'request.method == "GET" && request.path.startsWith("/v1/") && request.host == "api.internal"';
    const http = { request: { method: 'GET', path: '/v1/users', host: 'api.internal' } };
    assert.equal(decide([allow('a', WEB, { condition: c })], WEB, http).allowed, true);
    assert.deepEqual(
      decide([allow('a', WEB, { condition: c })]),
      denied('condition-false', 'a', 'request.method == "GET"'),
    );
    assert.equal(decide([allow('a', WEB, { condition: 'request.path == ""' })]).allowed, true);
  });

  it('inherited properties are not facts; a part reached without its name is absent (fails closed)', () => {
    const proto = decide([allow('a', WEB, { condition: '"constructor" in client.attributes' })]);
    assert.deepEqual(proto, denied('condition-false', 'a', '"constructor" in client.attributes'));
    const hidden = decide([allow('a', WEB, { condition: 'size(client["attri" + "butes"]) == 0' })]);
    assert.equal(hidden.reason, 'condition-false');
    assert.match(hidden.failedCondition, /error: No such key: attributes/);
  });

  it('facts over the input budget deny, explained, and never open a conditional allow', () => {
    const attributes = { big: 'x'.repeat(70 * 1024) };
    const d = decide([allow('a', WEB, { condition: 'true' })], WEB, { attributes });
    assert.equal(d.allowed, false);
    assert.equal(d.reason, 'condition-false');
    assert.match(d.failedCondition, /client and request facts exceed 65536 bytes/);
    // An unconditional allow needs no facts.
    assert.equal(decide([allow('a', WEB)], WEB, { attributes }).allowed, true);
  });
});

describe('buildPolicyIndex', () => {
  it('skips policies that do not compile or name unknown servers; keeps a broken deny as a deny', () => {
    const ps = [
      allow('good', WEB),
      allow('bad-pattern', 'spiffe://td/web-*'),
      allow('bad-cond', WEB, { condition: 'client.nope(' }),
      allow('orphan', WEB, { server: 'gone' }),
      deny('broken-deny', 'spiffe://td/ns/**', { condition: '1 +' }),
    ];
    const { index, skipped } = buildPolicyIndex([server('db')], ps);
    assert.deepEqual(
      skipped.map((s) => [s.policy, s.keptAsDeny ?? false]),
      [
        ['bad-pattern', false],
        ['bad-cond', false],
        ['orphan', false],
        ['broken-deny', true],
      ],
    );
    assert.match(skipped[0]!.error, /^client: invalid pattern/);
    assert.match(skipped[1]!.error, /^condition: /);
    assert.equal(skipped[2]!.error, 'server: unknown server workload "gone"');
    const d = decideAccess(index, request(WEB));
    assert.equal(d.reason, 'denied-by-policy');
    assert.equal(d.policy, 'broken-deny');
    assert.match(d.failedCondition, /^condition \(error: condition: /);
    assert.equal(decideAccess(index, request('spiffe://td/other')).reason, 'no-matching-policy');
  });
});
