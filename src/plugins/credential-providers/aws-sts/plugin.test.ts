// aws-sts against an STS stand-in that speaks the Query/XML protocol and, like AWS, trusts the
// JWT-SVID only through Tessera's OIDC discovery document and JWKS.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../../core/clock.ts';
import { createCredentialProvider } from '../catalog.ts';
import type { CredentialProvider } from '../credential-provider.ts';
import { type AwsStsStandIn, startAwsStsStandIn } from '../testing/aws-sts-stand-in.ts';
import { deps, record, request, testClient } from '../testing/fakes.ts';
import { type Misbehaviour, closedUrl } from '../testing/stand-in-server.ts';
import {
  type TesseraIssuer,
  foreignMinting,
  startTesseraIssuer,
} from '../testing/tessera-issuer.ts';

const ROLE = 'arn:aws:iam::123456789012:role/orders-reader';
const WEB = testClient.spiffeId; // spiffe://example.org/ns/prod/sa/web
const OTHER = 'spiffe://example.org/ns/dev/sa/web';

let issuer: TesseraIssuer;
let sts: AwsStsStandIn;

before(async () => {
  issuer = await startTesseraIssuer();
  sts = await startAwsStsStandIn({
    arn: ROLE,
    issuer: issuer.issuer,
    audience: 'sts.amazonaws.com',
    subjects: ['spiffe://example.org/ns/prod/*'],
    maxSessionSeconds: 7200,
  });
});
after(async () => {
  await sts.close();
  await issuer.close();
});

const provider = (config: Record<string, unknown> = {}, over: Parameters<typeof deps>[0] = {}) =>
  createCredentialProvider(
    record('aws-sts', { role_arn: ROLE, sts_endpoint: sts.url, ...config }, 'orders-aws'),
    deps({ minting: issuer, ...over }),
  );

const as = (spiffeId: string) => request({ client: { ...testClient, spiffeId } });

async function refused(p: CredentialProvider, message: string | RegExp, spiffeId = WEB) {
  const err = await p.release(as(spiffeId)).then(
    () => assert.fail('expected a refusal'),
    (e: unknown) => e as Error,
  );
  assert.equal(err.name, 'UnavailableError');
  if (typeof message === 'string') assert.equal(err.message, message);
  else assert.match(err.message, message);
  assert.doesNotMatch(err.message, /eyJ/, 'no token in the message');
}

describe('aws-sts', () => {
  it('assumes the role with the JWT-SVID and returns the STS credentials', async () => {
    const before = sts.requests.length;
    const c = await provider({ duration: '2h' }).release(as(WEB));
    const got = sts.issued.at(-1);
    assert.ok(got);
    assert.deepEqual(c, {
      value: {
        kind: 'aws',
        accessKeyId: got.accessKeyId,
        secretAccessKey: got.secretAccessKey,
        sessionToken: got.sessionToken,
      },
      expiresAt: Date.parse(got.expiration),
      leaseId: '',
    });
    assert.equal(got.subject, WEB);
    assert.equal(got.sessionName, 'example.org+ns+prod+sa+web');
    assert.equal(sts.requests.length, before + 1);
    const req = sts.requests.at(-1);
    assert.equal(req?.path, '/');
    assert.equal(req?.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(req?.headers.authorization, undefined, 'AssumeRoleWithWebIdentity is unsigned');
    const f = new URLSearchParams(req?.body);
    assert.deepEqual(
      [...f.keys()],
      ['Action', 'Version', 'RoleArn', 'RoleSessionName', 'WebIdentityToken', 'DurationSeconds'],
    );
    assert.equal(f.get('Action'), 'AssumeRoleWithWebIdentity');
    assert.equal(f.get('Version'), '2011-06-15');
    assert.equal(f.get('RoleArn'), ROLE);
    assert.equal(f.get('DurationSeconds'), '7200');
  });

  it('one STS call per client for concurrent releases, cached until 6 min before expiry', async () => {
    const clock = new ManualClock(Date.now());
    const p = provider({}, { now: clock.now.bind(clock) });
    const before = sts.requests.length;
    const [a, b, c] = await Promise.all([
      p.release(as(WEB)),
      p.release(as(WEB)),
      p.release(as(WEB)),
    ]);
    assert.equal(sts.requests.length, before + 1);
    assert.deepEqual(b, a);
    assert.deepEqual(c, a);
    clock.advance(53 * 60_000);
    assert.deepEqual(await p.release(as(WEB)), a, 'still 7 minutes left: cached');
    clock.advance(2 * 60_000);
    const fresh = await p.release(as(WEB));
    assert.equal(
      sts.requests.length,
      before + 2,
      'inside the 5-minute SDK window + 1 min: fetched',
    );
    assert.notDeepEqual(fresh.value, a.value);
  });

  it('each client assumes the role as itself; the trust policy decides', async () => {
    await refused(
      provider(),
      `AWS STS ${sts.url}/ refused: AccessDenied (Not authorized to perform sts:AssumeRoleWithWebIdentity) (HTTP 403)`,
      OTHER,
    );
    assert.equal(sts.issued.at(-1)?.subject, WEB);
  });

  it('STS refusals are reported by their XML error code', async () => {
    await refused(
      provider({ audience: 'not-aws' }),
      `AWS STS ${sts.url}/ refused: InvalidIdentityToken (Incorrect token audience) (HTTP 400)`,
    );
    await refused(
      provider({}, { minting: await foreignMinting(issuer.issuer) }),
      `AWS STS ${sts.url}/ refused: InvalidIdentityToken (Couldn't verify the token signature or claims) (HTTP 400)`,
    );
    await refused(
      provider({ duration: '3h' }),
      `AWS STS ${sts.url}/ refused: ValidationError (The requested DurationSeconds exceeds the MaxSessionDuration set for this role.) (HTTP 400)`,
    );
    const stale = await startTesseraIssuer({ now: () => Date.now() - 3_600_000 });
    const staleSts = await startAwsStsStandIn({
      arn: ROLE,
      issuer: stale.issuer,
      audience: 'sts.amazonaws.com',
      subjects: ['*'],
    });
    try {
      await refused(
        createCredentialProvider(
          record('aws-sts', { role_arn: ROLE, sts_endpoint: staleSts.url }),
          deps({ minting: stale }),
        ),
        `AWS STS ${staleSts.url}/ refused: ExpiredTokenException (Token expired) (HTTP 400)`,
      );
    } finally {
      await staleSts.close();
      await stale.close();
    }
  });

  it('a JWKS the cloud cannot fetch: IDPCommunicationError; a failure is not cached', async () => {
    const p = provider();
    issuer.failJwks = true;
    try {
      await refused(
        p,
        `AWS STS ${sts.url}/ refused: IDPCommunicationError (Couldn't retrieve verification key from your identity provider) (HTTP 400)`,
      );
    } finally {
      issuer.failJwks = false;
    }
    assert.equal((await p.release(as(WEB))).value.kind, 'aws');
  });

  it('garbage, oversized, slow, redirecting and unreachable endpoints', async () => {
    const cases: Array<[Misbehaviour, string]> = [
      ['garbage', `AWS STS ${sts.url}/: the answer is not an AssumeRoleWithWebIdentity result`],
      ['oversized', `AWS STS ${sts.url}/: response larger than 65536 bytes`],
      ['slow', `AWS STS ${sts.url}/: cannot reach it: no answer within 300 ms`],
      ['redirect', `AWS STS ${sts.url}/: answered with a redirect (HTTP 307)`],
    ];
    try {
      for (const [mode, message] of cases) {
        sts.misbehave = mode;
        await refused(provider({ timeout_ms: mode === 'slow' ? 300 : 10_000 }), message);
      }
    } finally {
      sts.misbehave = 'none';
    }
    const down = await closedUrl();
    await refused(
      provider({ sts_endpoint: `${down}/sts` }),
      `AWS STS ${down}/sts/: cannot reach it: ECONNREFUSED`,
    );
  });
});
