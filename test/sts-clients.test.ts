// Black-box: clients of the RFC 8693 token endpoint — `tessera sts exchange` and
// google-auth-library's ExternalAccountClient (workload identity federation) — against a real
// server started as in token-exchange.test.ts, with a local test OIDC issuer standing in for
// GitHub Actions.
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ExternalAccountClient } from 'google-auth-library';
import * as jose from 'jose';
import { runCli } from '../src/cli/testing/harness.ts';
import { githubClaims } from '../src/server/sts/policy/claims-fixtures.ts';
import { GITHUB_ISSUER } from '../src/server/sts/policy/templates.ts';
import { freePort } from './helpers/ports.ts';
import type { ServerProcess } from './helpers/server-process.ts';
import { OCTO_API_POLICY, githubPolicy, startStsServer } from './helpers/sts-server.ts';
import { AT_TYPE, JWT_TYPE } from './helpers/test-oidc-issuer.ts';

const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';
const GCP_AUD =
  '//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/p/providers/tessera';

describe('token endpoint clients', () => {
  let server: ServerProcess;
  let issuer: string;
  let signingKey: KeyObject;
  let dir: string;

  before(async () => {
    ({ server, issuer, dir, signingKey } = await startStsServer({
      policies: [
        githubPolicy(),
        OCTO_API_POLICY,
        {
          // What google-auth-library asks for: an access token for the pool provider
          // audience with the cloud-platform scope. Listed after octo-api on purpose: the
          // requested audience selects the policy, so the earlier one does not shadow it.
          name: 'gcp-federation',
          issuer: GITHUB_ISSUER,
          condition: 'assertion.repository == "octo-org/gcp-deployer"',
          attribute_mapping: { subject: 'assertion.sub' },
          access_token: { audience: GCP_AUD, scopes: [CLOUD_PLATFORM] },
          ttl: '10m',
        },
      ],
    }));
  });
  after(async () => {
    await server?.stop();
  });

  const now = () => Math.floor(Date.now() / 1000);
  let n = 0;
  /** A fresh GitHub-style subject token in a file; returns the path and the token. */
  const tokenFile = async (over: Record<string, unknown> = {}) => {
    const token = await new jose.SignJWT({
      ...githubClaims(),
      iat: now() - 10,
      nbf: now() - 10,
      exp: now() + 300,
      ...over,
    })
      .setProtectedHeader({ alg: 'ES256', kid: 'gh-1', typ: 'JWT' })
      .sign(signingKey);
    const file = path.join(dir, `subject-${n++}.jwt`);
    writeFileSync(file, token + '\n');
    return { file, token };
  };
  const jwks = () => jose.createRemoteJWKSet(new URL(`${issuer}/keys`));

  describe('tessera sts exchange', () => {
    it('table: the JWT-SVID alone on stdout, type and lifetime on stderr', async () => {
      const { file, token } = await tokenFile();
      const r = await runCli([
        'sts',
        'exchange',
        '--token-endpoint',
        `${issuer}/token`,
        '--subject-token',
        file,
        '--audience',
        'https://svc.example.org',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const svid = r.stdout.trim();
      assert.equal(r.stdout, svid + '\n');
      const { payload } = await jose.jwtVerify(svid, jwks(), {
        issuer,
        audience: 'https://svc.example.org',
      });
      assert.equal(payload.sub, 'spiffe://example.org/ci/github/octo-org/octo-repo');
      assert.match(r.stderr, new RegExp(`issued token type: ${JWT_TYPE}`));
      assert.match(r.stderr, /expires in: \d+s/);
      assert.ok(!(r.stdout + r.stderr).includes(token), 'the subject token is never printed');
    });

    it('json: an access token with the requested scopes', async () => {
      const { file } = await tokenFile();
      const r = await runCli([
        'sts',
        'exchange',
        '--token-endpoint',
        `${issuer}/token`,
        '--subject-token',
        file,
        '--requested-token-type',
        'access_token',
        '--audience',
        'https://api.example.org',
        '--scope',
        'read',
        '--scope',
        'write',
        '--output',
        'json',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const res = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.equal(res.issued_token_type, AT_TYPE);
      assert.equal(res.token_type, 'Bearer');
      assert.ok(typeof res.expires_in === 'number' && res.expires_in <= 600);
      const { payload } = await jose.jwtVerify(String(res.access_token), jwks(), {
        issuer,
        audience: 'https://api.example.org',
        typ: 'at+jwt',
      });
      assert.equal(payload.scope, 'read write');
    });

    const refusals: Array<[string, () => Promise<string[]>, number, RegExp]> = [
      [
        'invalid_grant (claims fail every policy) → exit 5',
        async () => [
          '--subject-token',
          (await tokenFile({ repository_owner: 'evil', repository: 'evil/x' })).file,
          '--audience',
          'https://svc.example.org',
        ],
        5,
        /invalid_grant/,
      ],
      [
        'invalid_target → exit 5',
        async () => [
          '--subject-token',
          (await tokenFile()).file,
          '--requested-token-type',
          'access_token',
          '--audience',
          'https://other.example.org',
        ],
        5,
        /invalid_target/,
      ],
      [
        'invalid_scope → exit 5',
        async () => [
          '--subject-token',
          (await tokenFile()).file,
          '--requested-token-type',
          'access_token',
          '--audience',
          'https://api.example.org',
          '--scope',
          'admin',
        ],
        5,
        /invalid_scope/,
      ],
      [
        'invalid_request (JWT-SVID without audience) → exit 2',
        async () => ['--subject-token', (await tokenFile()).file],
        2,
        /invalid_request/,
      ],
    ];
    for (const [name, args, code, message] of refusals) {
      it(name, async () => {
        const extra = await args();
        const file = extra[extra.indexOf('--subject-token') + 1] ?? '';
        const token = readFileSync(file, 'utf8').trim();
        const r = await runCli([
          'sts',
          'exchange',
          '--token-endpoint',
          `${issuer}/token`,
          ...extra,
        ]);
        assert.equal(r.code, code, r.stderr);
        assert.equal(r.stdout, '');
        assert.match(r.stderr, message);
        assert.ok(!r.stderr.includes(token), 'the subject token is never printed');
      });
    }

    it('an unreachable endpoint → exit 6', async () => {
      const { file } = await tokenFile();
      const port = await freePort();
      const r = await runCli([
        'sts',
        'exchange',
        '--token-endpoint',
        `http://127.0.0.1:${port}/token`,
        '--subject-token',
        file,
        '--audience',
        'x',
      ]);
      assert.equal(r.code, 6, r.stderr);
      assert.match(r.stderr, /unreachable/);
    });

    it('a missing subject-token file → exit 3, a bad URL → exit 2', async () => {
      const missing = await runCli([
        'sts',
        'exchange',
        '--token-endpoint',
        `${issuer}/token`,
        '--subject-token',
        path.join(dir, 'nope'),
      ]);
      assert.equal(missing.code, 3, missing.stderr);
      const { file } = await tokenFile();
      const bad = await runCli([
        'sts',
        'exchange',
        '--token-endpoint',
        'ftp://x/token',
        '--subject-token',
        file,
      ]);
      assert.equal(bad.code, 2, bad.stderr);
    });
  });

  describe('google-auth-library ExternalAccountClient', () => {
    it('obtains an access token from Tessera with a file credential source', async () => {
      const { file } = await tokenFile({
        repository: 'octo-org/gcp-deployer',
        sub: 'repo:octo-org/gcp-deployer:ref:refs/heads/main',
      });
      const client = ExternalAccountClient.fromJSON({
        type: 'external_account',
        audience: GCP_AUD,
        subject_token_type: JWT_TYPE,
        token_url: `${issuer}/token`,
        credential_source: { file },
      });
      assert.ok(client, 'fromJSON accepted the config');
      const { token } = await client.getAccessToken();
      assert.ok(token);
      const { payload, protectedHeader } = await jose.jwtVerify(token, jwks(), {
        issuer,
        audience: GCP_AUD,
        typ: 'at+jwt',
      });
      assert.equal(protectedHeader.typ, 'at+jwt');
      assert.equal(payload.client_id, 'gcp-federation');
      assert.equal(payload.scope, CLOUD_PLATFORM);
      assert.equal(payload.sub, 'repo:octo-org/gcp-deployer:ref:refs/heads/main');
    });
  });
});
