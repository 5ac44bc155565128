// tessera issuer / trust-policy against a real server with a token endpoint, a config-defined
// issuer and policy, and a local HTTPS OIDC issuer found through discovery.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as jose from 'jose';
import { githubClaims } from '../../server/sts/policy/claims-fixtures.ts';
import { GITHUB_ISSUER } from '../../server/sts/policy/templates.ts';
import { freePort } from '../../../test/helpers/ports.ts';
import {
  GH_AUD,
  GRANT,
  JWT_TYPE,
  startDiscoveryIssuer,
  testIssuer,
  type DiscoveryIssuer,
  type TestIssuer,
} from '../../../test/helpers/test-oidc-issuer.ts';
import { startTestServer, type TestServer } from '../testing/harness.ts';

let s: TestServer;
let oidc: DiscoveryIssuer;
let gh: TestIssuer;
const AUD = 'tessera-sts';

before(async () => {
  oidc = await startDiscoveryIssuer();
  gh = testIssuer();
  const port = await freePort();
  s = await startTestServer({
    config: {
      public_listen: `127.0.0.1:${port}`,
      sts: {
        issuers: [{ issuer: GITHUB_ISSUER, jwks_file: gh.jwksFile, audiences: [GH_AUD] }],
        policies: [
          {
            name: 'cfg-policy',
            issuer: GITHUB_ISSUER,
            condition: 'assertion.repository_owner == "someone-else"',
            attribute_mapping: { subject: 'assertion.sub' },
            spiffe_id: 'spiffe://example.org/cfg/x',
          },
        ],
        ca_file: oidc.caFile,
      },
    },
  });
});
after(async () => {
  await s?.stop();
  await oidc?.close();
});

const now = () => Math.floor(Date.now() / 1000);
const claims = (over: Record<string, unknown> = {}) => ({
  ...githubClaims(),
  iss: oidc.issuer,
  aud: AUD,
  iat: now() - 5,
  exp: now() + 300,
  ...over,
});
const file = (name: string, content: string) => {
  const f = path.join(s.dir, name);
  writeFileSync(f, content);
  return f;
};
const exchange = async (token: string) => {
  const res = await fetch(`http://${s.publicAddr}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: GRANT,
      subject_token: token,
      subject_token_type: JWT_TYPE,
      audience: 'https://svc.example.org',
    }).toString(),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
};
const audit = async (action: string) =>
  JSON.parse((await s.cli('audit', 'list', '--action', action, '--output', 'json')).stdout)
    .records as { target: string; outcome: string; details: Record<string, unknown> }[];
const ok = (r: { code: number; stderr: string }) => assert.equal(r.code, 0, r.stderr);

describe('tessera issuer', () => {
  test('add with a JWKS file, list (config + API), show, remove; every change audited', async () => {
    const other = testIssuer();
    const add = await s.cli(
      'issuer',
      'add',
      '--issuer',
      'https://gitlab.example.com',
      '--jwks-file',
      other.jwksFile,
      '--audience',
      'a1',
      '--audience',
      'a2',
    );
    ok(add);
    assert.match(add.stdout, /^issuer https:\/\/gitlab\.example\.com added \(jwks, keys: gh-1\)$/m);
    const list = await s.cli('issuer', 'list');
    ok(list);
    assert.match(list.stdout, /^ISSUER\s+AUDIENCES\s+KEYS\s+SOURCE$/m);
    assert.match(list.stdout, /token\.actions\.githubusercontent\.com\s+\S+\s+jwks_file\s+config/);
    assert.match(list.stdout, /gitlab\.example\.com\s+a1,a2\s+jwks\s+api/);
    const show = JSON.parse(
      (await s.cli('issuer', 'show', '--issuer', 'https://gitlab.example.com', '--output', 'json'))
        .stdout,
    );
    assert.deepEqual(
      { ...show, createdAt: typeof show.createdAt },
      {
        issuer: 'https://gitlab.example.com',
        audiences: ['a1', 'a2'],
        keySource: 'jwks',
        source: 'api',
        keyIds: ['gh-1'],
        createdAt: 'string',
      },
    );
    ok(await s.cli('issuer', 'remove', '--issuer', 'https://gitlab.example.com'));
    const gone = await s.cli('issuer', 'show', '--issuer', 'https://gitlab.example.com');
    assert.equal(gone.code, 3);
    assert.deepEqual(
      [...(await audit('sts.issuer.add')), ...(await audit('sts.issuer.remove'))].map((r) => [
        r.target,
        r.outcome,
      ]),
      [
        ['https://gitlab.example.com', 'success'],
        ['https://gitlab.example.com', 'success'],
      ],
    );
    // create and delete are aliases of add and remove (the verbs of every other group).
    const created = await s.cli(
      'issuer',
      'create',
      '--issuer',
      'https://gitlab.example.com',
      '--jwks-file',
      other.jwksFile,
      '--audience',
      'a3',
    );
    ok(created);
    assert.match(created.stdout, /^issuer https:\/\/gitlab\.example\.com added/m);
    ok(await s.cli('issuer', 'delete', '--issuer', 'https://gitlab.example.com'));
    assert.equal((await s.cli('issuer', 'show', '--issuer', 'https://gitlab.example.com')).code, 3);
  });

  test('bad input is refused with a clear error and changes nothing', async () => {
    const cases: [string[], number, RegExp][] = [
      [['--issuer', 'http://x.example', '--discovery', '--audience', 'a'], 2, /https URL/],
      [['--issuer', 'https://x.example', '--audience', 'a'], 2, /exactly one of --jwks-file/],
      [['--issuer', 'https://x.example', '--discovery'], 2, /--audience is required/],
      [
        [
          '--issuer',
          'https://x.example',
          '--jwks-file',
          file('bad.json', '{"keys": 1}'),
          '--audience',
          'a',
        ],
        2,
        /jwks: not a JWKS/,
      ],
      [
        [
          '--issuer',
          'https://x.example',
          '--jwks-file',
          file('big.json', ' '.repeat(300_000)),
          '--audience',
          'a',
        ],
        2,
        /larger than 262144 bytes/,
      ],
      [
        ['--issuer', GITHUB_ISSUER, '--discovery', '--audience', 'a'],
        4,
        /defined in the server config/,
      ],
      // Discovery is checked at add: the document of {issuer}/x does not exist.
      [
        ['--issuer', `${oidc.issuer}/x`, '--discovery', '--audience', 'a'],
        2,
        /discovery: .*HTTP 404/,
      ],
    ];
    for (const [args, code, message] of cases) {
      const r = await s.cli('issuer', 'add', ...args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const list = JSON.parse((await s.cli('issuer', 'list', '--output', 'json')).stdout);
    assert.deepEqual(
      list.issuers.map((i: { issuer: string }) => i.issuer),
      [GITHUB_ISSUER],
    );
    const removeConfig = await s.cli('issuer', 'remove', '--issuer', GITHUB_ISSUER);
    assert.equal(removeConfig.code, 7);
    assert.match(removeConfig.stderr, /defined in the server config/);
    // Refusals that reached the server are audited with their code (the CLI's own checks are not).
    const refused = [...(await audit('sts.issuer.add')), ...(await audit('sts.issuer.remove'))]
      .filter((r) => r.outcome === 'error')
      .map((r) => r.details.code);
    assert.deepEqual(refused, [
      'invalid_argument',
      'invalid_argument',
      'already_exists',
      'invalid_argument',
      'failed_precondition',
    ]);
  });
});

describe('tessera trust-policy', () => {
  test('create → the exchange issues; delete → refused; issuer in use cannot be removed', async () => {
    const added = await s.cli(
      'issuer',
      'add',
      '--issuer',
      oidc.issuer,
      '--discovery',
      '--audience',
      AUD,
    );
    ok(added);
    // The keys fetched to check the issuer at add fill the cache: no second fetch on first use.
    assert.match(
      added.stdout,
      new RegExp(`^issuer ${oidc.issuer} added \\(discovery, keys: ${oidc.kid}\\)$`, 'm'),
    );
    const jwksFetches = oidc.hits.get('/jwks') ?? 0;
    const token = await oidc.sign(claims());
    const before = await exchange(token);
    assert.equal(before.status, 400);
    assert.equal(before.json.error, 'invalid_grant');

    const create = await s.cli(
      'trust-policy',
      'create',
      '--name',
      'octo-ci',
      '--issuer',
      oidc.issuer,
      '--condition',
      'assertion.repository_owner == "octo-org" && assertion.ref == "refs/heads/main"',
      '--mapping',
      'repository=assertion.repository',
      '--spiffe-id',
      'spiffe://example.org/ci/{repository*}',
      '--ttl',
      '10m',
    );
    ok(create);
    assert.match(
      create.stdout,
      /^trust policy octo-ci created \(https:\/\/127\.0\.0\.1:\d+ → spiffe:\/\/example\.org\/ci\/\{repository\*\}\)$/m,
    );

    const issued = await exchange(token);
    assert.equal(issued.status, 200, JSON.stringify(issued.json));
    assert.equal(oidc.hits.get('/jwks') ?? 0, jwksFetches);
    const svid = jose.decodeJwt(String(issued.json.access_token));
    assert.equal(svid.sub, 'spiffe://example.org/ci/octo-org/octo-repo');
    assert.ok(Number(issued.json.expires_in) <= 600);

    const inUse = await s.cli('issuer', 'remove', '--issuer', oidc.issuer);
    assert.equal(inUse.code, 7);
    assert.match(inUse.stderr, /used by trust policy "octo-ci"/);

    const show = JSON.parse(
      (await s.cli('trust-policy', 'show', '--name', 'octo-ci', '--output', 'json')).stdout,
    );
    assert.equal(show.source, 'api');
    assert.deepEqual(show.attributeMapping, {
      repository: 'assertion.repository',
      subject: 'assertion.sub',
    });
    assert.equal(show.ttl, '10m');

    ok(await s.cli('trust-policy', 'delete', '--name', 'octo-ci'));
    const after = await exchange(token);
    assert.equal(after.status, 400);
    assert.equal(after.json.error, 'invalid_grant');
    ok(await s.cli('issuer', 'remove', '--issuer', oidc.issuer));

    const exchanges = await audit('sts.exchange');
    assert.deepEqual(
      exchanges.slice(-3).map((r) => [r.outcome, r.details.policy]),
      [
        ['denied', ''],
        ['success', 'octo-ci'],
        ['denied', ''],
      ],
    );
    const created = await audit('sts.policy.create');
    assert.equal(created.at(-1)?.target, 'octo-ci');
    assert.equal(created.at(-1)?.details.issuer, oidc.issuer);
    assert.equal((await audit('sts.policy.delete')).at(-1)?.target, 'octo-ci');
  });

  test("an invalid CEL expression or template is refused with the compiler's message", async () => {
    const base = ['trust-policy', 'create', '--name', 'bad', '--issuer', GITHUB_ISSUER];
    const cases: [string[], number, RegExp][] = [
      [
        ['--condition', 'assertion.ref ==', '--spiffe-id', 'spiffe://example.org/x'],
        2,
        /trust policy "bad": condition: /,
      ],
      [
        ['--condition', 'nope.x == "a"', '--spiffe-id', 'spiffe://example.org/x'],
        2,
        /condition: .*nope/,
      ],
      [
        ['--condition', 'true', '--spiffe-id', 'spiffe://example.org/x/{missing}'],
        2,
        /spiffe_id: placeholder \{missing\} names no attribute/,
      ],
      [['--condition', 'true', '--spiffe-id', 'spiffe://other.org/x'], 2, /spiffe_id/],
      [
        ['--condition', 'true', '--spiffe-id', 'spiffe://example.org/x', '--ttl', '2h'],
        2,
        /ttl: .*exceeds/,
      ],
      [['--condition', 'true'], 2, /exactly one of spiffe_id or access_token/],
    ];
    for (const [args, code, message] of cases) {
      const r = await s.cli(...base, ...args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const unregistered = await s.cli(
      'trust-policy',
      'create',
      '--name',
      'bad',
      '--issuer',
      'https://nowhere.example',
      '--condition',
      'true',
      '--spiffe-id',
      'spiffe://example.org/x',
    );
    assert.equal(unregistered.code, 7);
    assert.match(unregistered.stderr, /issuer "https:\/\/nowhere\.example" is not registered/);
    const clash = await s.cli(
      'trust-policy',
      'create',
      '--name',
      'cfg-policy',
      '--issuer',
      GITHUB_ISSUER,
      '--condition',
      'true',
      '--spiffe-id',
      'spiffe://example.org/x',
    );
    assert.equal(clash.code, 4);
    const list = JSON.parse((await s.cli('trust-policy', 'list', '--output', 'json')).stdout);
    assert.deepEqual(
      list.policies.map((p: { name: string; source: string }) => [p.name, p.source]),
      [['cfg-policy', 'config']],
    );
    const delConfig = await s.cli('trust-policy', 'delete', '--name', 'cfg-policy');
    assert.equal(delConfig.code, 7);
  });

  test('from a file, from a template, access-token output', async () => {
    const f = file(
      'policy.yaml',
      [
        'name: octo-api',
        `issuer: ${GITHUB_ISSUER}`,
        'condition: assertion.repository_owner == "octo-org"',
        'access_token:',
        '  audience: https://api.example.org',
        '  scopes: [read, write]',
        '  require_dpop: true',
        'ttl: 5m',
      ].join('\n'),
    );
    const r = await s.cli('trust-policy', 'create', '--file', f, '--output', 'json');
    ok(r);
    const p = JSON.parse(r.stdout);
    assert.deepEqual(p.accessToken, {
      audience: 'https://api.example.org',
      scopes: ['read', 'write'],
      requireDpop: true,
    });
    assert.equal(p.spiffeId, null);
    const t = await s.cli(
      'trust-policy',
      'create',
      '--template',
      'github',
      '--param',
      'owner=octo-org',
      '--param',
      'ref=refs/heads/main',
      '--output',
      'json',
    );
    ok(t);
    const tp = JSON.parse(t.stdout);
    assert.equal(tp.name, 'github-octo-org');
    assert.equal(tp.template, 'github');
    assert.match(tp.condition, /assertion\.ref == "refs\/heads\/main"/);
    const badParam = await s.cli(
      'trust-policy',
      'create',
      '--template',
      'github',
      '--param',
      'own=x',
    );
    assert.equal(badParam.code, 2);
    assert.match(badParam.stderr, /unknown parameter "own"/);
    const table = await s.cli('trust-policy', 'list');
    assert.match(
      table.stdout,
      /^octo-api\s+https:\/\/token\.actions\.githubusercontent\.com\s+access token https:\/\/api\.example\.org \[read write\] \(DPoP\)\s+5m\s+api$/m,
    );
    ok(await s.cli('trust-policy', 'delete', '--name', 'octo-api'));
    ok(await s.cli('trust-policy', 'delete', '--name', 'github-octo-org'));
  });

  test('test: a dry run with a token or raw claims; nothing issued or audited as an exchange', async () => {
    ok(
      await s.cli(
        'trust-policy',
        'create',
        '--name',
        'octo-main',
        '--issuer',
        GITHUB_ISSUER,
        '--condition',
        'assertion.repository_owner == "octo-org" && assertion.ref == "refs/heads/main"',
        '--mapping',
        'repository=assertion.repository',
        '--spiffe-id',
        'spiffe://example.org/ci/{repository*}',
      ),
    );
    const exchangesBefore = (await audit('sts.exchange')).length;
    const ghToken = (c: Record<string, unknown>) =>
      new jose.SignJWT({ ...githubClaims(), iat: now() - 5, exp: now() + 300, ...c })
        .setProtectedHeader({ alg: 'ES256', kid: 'gh-1' })
        .sign(gh.signingKey);

    const allow = await s.cli(
      'trust-policy',
      'test',
      '--policy',
      'octo-main',
      '--token',
      file('t1.jwt', await ghToken({})),
    );
    ok(allow);
    assert.match(allow.stdout, /^Decision:\s+allow$/m);
    assert.match(allow.stdout, /^SPIFFE ID:\s+spiffe:\/\/example\.org\/ci\/octo-org\/octo-repo$/m);
    assert.match(allow.stdout, /^Attribute repository:\s+octo-org\/octo-repo$/m);

    const deny = JSON.parse(
      (
        await s.cli(
          'trust-policy',
          'test',
          '--name', // --policy, its older spelling, is used above
          'octo-main',
          '--output',
          'json',
          '--claims',
          file('c1.json', JSON.stringify({ ...githubClaims(), ref: 'refs/heads/dev' })),
        )
      ).stdout,
    );
    assert.deepEqual(
      { ...deny, reason: typeof deny.reason },
      {
        decision: 'deny',
        policy: 'octo-main',
        mode: 'claims',
        failing: 'condition: assertion.ref == "refs/heads/main"',
        reason: 'string',
        attributes: {
          subject: 'repo:octo-org/octo-repo:environment:prod',
          repository: 'octo-org/octo-repo',
        },
        spiffeId: null,
        accessToken: null,
        ttlSeconds: null,
      },
    );

    // A token is verified as the exchange would: a foreign audience is a denial at "token".
    const badAud = JSON.parse(
      (
        await s.cli(
          'trust-policy',
          'test',
          '--policy',
          'octo-main',
          '--output',
          'json',
          '--token',
          file('t2.jwt', await ghToken({ aud: 'someone-else' })),
        )
      ).stdout,
    );
    assert.equal(badAud.decision, 'deny');
    assert.equal(badAud.failing, 'token');
    assert.match(badAud.reason, /audience/);

    // An inline policy (not stored) against raw claims.
    const inline = await s.cli(
      'trust-policy',
      'test',
      '--output',
      'json',
      '--policy-file',
      file(
        'inline.yaml',
        `name: inline\nissuer: ${GITHUB_ISSUER}\ncondition: 'true'\nspiffe_id: spiffe://example.org/x\n`,
      ),
      '--claims',
      file('c2.json', JSON.stringify(githubClaims())),
    );
    ok(inline);
    assert.equal(JSON.parse(inline.stdout).decision, 'allow');
    assert.equal((await s.cli('trust-policy', 'show', '--name', 'inline')).code, 3);

    for (const [args, message] of [
      [['--policy', 'octo-main'], /exactly one of --token and --claims/],
      [['--policy', 'nope', '--claims', file('c3.json', '{}')], /does not exist/],
      [
        ['--policy', 'octo-main', '--claims', file('c4.json', '[1]')],
        /claims: must be a JSON object/,
      ],
      [['--policy', 'octo-main', '--claims', file('c5.json', '{')], /claims: not JSON/],
      [
        [
          '--policy-file',
          file('tpl.yaml', 'template: github\n'),
          '--claims',
          file('c6.json', '{}'),
        ],
        /cannot be tested inline/,
      ],
    ] as [string[], RegExp][]) {
      const r = await s.cli('trust-policy', 'test', ...args);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, message);
    }
    assert.equal((await audit('sts.exchange')).length, exchangesBefore, 'no exchange recorded');
    ok(await s.cli('trust-policy', 'delete', '--name', 'octo-main'));
  });
});
