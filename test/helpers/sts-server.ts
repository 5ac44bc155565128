// A real server with the token exchange on its public listener, trusting the local GitHub-shaped
// test issuer (test-oidc-issuer.ts): the common setup of the token-exchange tests and bench.
import { GITHUB_ISSUER, githubActionsPolicy } from '../../src/server/sts/policy/templates.ts';
import { freePort } from './ports.ts';
import { startServer, type ServerProcess } from './server-process.ts';
import { GH_AUD, testIssuer, type TestIssuer } from './test-oidc-issuer.ts';

/** The GitHub Actions template policy for owner octo-org (JWT-SVIDs). */
export const githubPolicy = () =>
  githubActionsPolicy({ trustDomain: 'example.org', owner: 'octo-org' });

/** An access-token policy for https://api.example.org, scopes read and write. */
export const OCTO_API_POLICY = {
  name: 'octo-api',
  issuer: GITHUB_ISSUER,
  condition: 'assertion.repository_owner == "octo-org"',
  attribute_mapping: { subject: 'assertion.sub' },
  access_token: { audience: 'https://api.example.org', scopes: ['read', 'write'] },
  ttl: '10m',
};

export interface StsServer extends TestIssuer {
  readonly server: ServerProcess;
  /** http://127.0.0.1:<port>: the public listener and the server's OIDC issuer. */
  readonly issuer: string;
}

/** `sts`: the rest of the sts block (policies, rate_limit, …); the issuer is set here. */
export async function startStsServer(sts: Record<string, unknown>): Promise<StsServer> {
  const oidc = testIssuer();
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const server = await startServer({
    config: {
      public_listen: `127.0.0.1:${port}`,
      jwt: { issuer },
      sts: {
        issuers: [{ issuer: GITHUB_ISSUER, jwks_file: oidc.jwksFile, audiences: [GH_AUD] }],
        ...sts,
      },
    },
  });
  return { ...oidc, server, issuer };
}
