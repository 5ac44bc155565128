// Black box: the token exchange with no `sts` block in the config. With the public listener on,
// an issuer and a trust policy added through the CLI are enough to exchange, and every endpoint
// the discovery document advertises answers. Without it, adding either is refused, naming
// --public-listen, and nothing is stored.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { runCli } from './helpers/cli-process.ts';
import { freePort } from './helpers/ports.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';
import { GRANT, JWT_TYPE, testIssuer, type TestIssuer } from './helpers/test-oidc-issuer.ts';

const ISSUER = 'https://ci.example.com';
const AUD = 'tessera';

describe('token exchange without an sts config block', () => {
  let on: ServerProcess;
  let off: ServerProcess;
  let idp: TestIssuer;
  let url: string;

  before(async () => {
    idp = testIssuer();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    [on, off] = await Promise.all([
      startServer({ config: { public_listen: `127.0.0.1:${port}` } }),
      startServer(),
    ]);
  });
  after(async () => {
    await Promise.all([on?.stop(), off?.stop()]);
    rmSync(idp.dir, { recursive: true, force: true });
  });

  const addIssuer = (s: ServerProcess) =>
    runCli([
      'issuer',
      'add',
      '--issuer',
      ISSUER,
      '--jwks-file',
      idp.jwksFile,
      '--audience',
      AUD,
      '--socket',
      s.adminSocket,
    ]);
  const createPolicy = (s: ServerProcess) =>
    runCli([
      'trust-policy',
      'create',
      '--name',
      'deploy',
      '--issuer',
      ISSUER,
      '--condition',
      'assertion.repository == "octo-org/app"',
      '--mapping',
      'repository=assertion.repository',
      '--spiffe-id',
      'spiffe://example.org/ci/{repository*}',
      '--socket',
      s.adminSocket,
    ]);

  it('exchanges with an issuer and a policy added through the CLI; advertised endpoints answer', async () => {
    const added = await addIssuer(on);
    assert.equal(added.code, 0, added.stderr);
    const created = await createPolicy(on);
    assert.equal(created.code, 0, created.stderr);
    const now = Math.floor(Date.now() / 1000);
    const subject = await new SignJWT({ repository: 'octo-org/app' })
      .setProtectedHeader({ alg: 'ES256', kid: 'gh-1' })
      .setIssuer(ISSUER)
      .setAudience(AUD)
      .setSubject('repo:octo-org/app')
      .setIssuedAt(now - 5)
      .setExpirationTime(now + 300)
      .sign(idp.signingKey);
    const res = await fetch(`${url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: GRANT,
        subject_token: subject,
        subject_token_type: JWT_TYPE,
        audience: 'https://svc.example.org',
      }).toString(),
    });
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(typeof body.access_token, 'string');
    const md = (await (await fetch(`${url}/.well-known/openid-configuration`)).json()) as Record<
      string,
      string
    >;
    for (const key of ['token_endpoint', 'introspection_endpoint', 'revocation_endpoint']) {
      const r = await fetch(md[key] as string, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'token=x',
      });
      assert.notEqual(r.status, 404, `${key} ${md[key]} answers`);
      assert.ok(r.status < 500, `${key}: ${r.status}`);
    }
  });

  it('refuses issuers and policies on a server without a public listener, naming --public-listen', async () => {
    for (const [what, run] of [
      ['an issuer', addIssuer],
      ['a trust policy', createPolicy],
    ] as const) {
      const r = await run(off);
      assert.equal(r.code, 7, r.stderr);
      assert.equal(
        r.stderr,
        `error: this server does not serve the token exchange, so ${what} could not be used here: ` +
          'start it with --public-listen (config public_listen), which serves /token, /introspect ' +
          'and /revoke; nothing was stored\n',
      );
    }
    const issuers = await runCli([
      'issuer',
      'list',
      '--socket',
      off.adminSocket,
      '--output',
      'json',
    ]);
    assert.equal(issuers.code, 0, issuers.stderr);
    assert.deepEqual(JSON.parse(issuers.stdout), { issuers: [] });
  });
});
