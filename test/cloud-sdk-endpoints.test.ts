// Issue 12, Google Cloud and Azure: unmodified SDKs (google-auth-library, @azure/identity) get
// credentials from a real agent's cloud endpoints through their default chains, configured only
// by the variables `tessera cloud env` prints when run as the workload's uid (and the files it
// writes). A real server (RSA JWT authority, public listener serving OIDC discovery and JWKS,
// reached through a TCP proxy the test can cut) and agent; stand-ins of Google STS and Entra ID
// that trust the server only through that discovery document and JWKS, issuing 20-second tokens
// so the SDKs (which refresh 5 minutes before expiry) fetch new ones on every call. Workloads run
// as two uids, so as two identities.
import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import {
  type EntraStandIn,
  startEntraStandIn,
} from '../src/plugins/credential-providers/testing/entra-stand-in.ts';
import {
  type GoogleStandIn,
  startGoogleStandIn,
} from '../src/plugins/credential-providers/testing/google-sts-stand-in.ts';
import { adminClients, entry } from './helpers/admin.ts';
import { startAgent, type AgentProcess } from './helpers/agent-process.ts';
import { runCli } from './helpers/cli-process.ts';
import { cloudEnvAs, runAs } from './helpers/cloud-workload.ts';
import { makeTlsFiles } from './helpers/https.ts';
import { freePort, waitFor } from './helpers/ports.ts';
import { REPO, startServer, type ServerProcess } from './helpers/server-process.ts';
import { TcpProxy } from './helpers/tcp-proxy.ts';

const UID_A = 1530;
const UID_B = 1531;
const A = 'spiffe://example.org/app/orders';
const B = 'spiffe://example.org/app/billing';
/** A workload the failure cases use first: nothing of it is cached anywhere. */
const UID_C = 1532;
const C = 'spiffe://example.org/app/shipping';
const PROVIDER =
  '//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/tessera/providers/example-org';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const APP = '0b6c9a4e-1f2d-4c3b-8a7e-9d5f6e4c3b2a';
const EMAIL = 'orders@orders-prod.iam.gserviceaccount.com';
const CHILD = path.join(REPO, 'test/helpers/cloud-sdk-child.ts');
/** Lifetime of the stand-ins' tokens: far inside the SDKs' 5-minute refresh window. */
const TOKEN_SECONDS = 20;
const root = process.getuid?.() === 0;

interface SdkResult {
  ok?: Record<string, unknown> & { token?: string; second?: string };
  error?: string;
  status?: number;
}

/** The SDK child as `uid` with only `env` (and PATH, HOME) set. */
async function sdk(
  uid: number,
  env: Record<string, string>,
  ...args: string[]
): Promise<SdkResult> {
  const r = await runAs(uid, [CHILD, ...args], env);
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as SdkResult;
  } catch {
    return { error: `no JSON from the child (exit ${r.code}): ${r.stdout} ${r.stderr}` };
  }
}

describe(
  'cloud SDKs through the agent',
  { skip: !root && 'needs root to run workloads as other uids' },
  () => {
    let server: ServerProcess;
    let agent: AgentProcess;
    let google: GoogleStandIn;
    let entra: EntraStandIn;
    /** Entra over HTTPS, for workload identity (MSAL accepts only https authorities). */
    let entraTls: EntraStandIn;
    let jwks: TcpProxy;
    let dir: string;
    let config: string;
    let caFile: string;
    let addr: string;
    const admin = async (...args: string[]) => {
      const r = await runCli(args, { env: { TESSERA_ADMIN_SOCKET: server.adminSocket } });
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    };
    /** Runs the SDK until `done` (entries and policies reach the agent), bounded. */
    async function until(
      uid: number,
      env: Record<string, string>,
      args: string[],
      done: (r: SdkResult) => boolean,
    ) {
      let r: SdkResult = {};
      await waitFor(async () => done((r = await sdk(uid, env, ...args))), 120_000, 200).catch(() =>
        assert.fail(`no final answer: ${JSON.stringify(r)}`),
      );
      return r;
    }
    /** A home directory of `uid` (the credential configs `cloud env` writes go there). */
    const home = (uid: number) => {
      const h = path.join(dir, `home-${uid}`);
      mkdirSync(h, { recursive: true });
      chownSync(h, uid, uid);
      return h;
    };
    const gce = (uid: number) => cloudEnvAs(uid, 'gcp', ['--agent-config', config]);
    const imds = (uid: number) => cloudEnvAs(uid, 'azure', ['--agent-config', config]);

    before(async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-cloud-sdk-'));
      chmodSync(dir, 0o755); // the workloads (other uids) read the agent config and CA here
      const tls = makeTlsFiles(dir);
      caFile = path.join(dir, 'ca.pem');
      const publicPort = await freePort();
      jwks = await new TcpProxy(publicPort).start();
      const issuer = `http://127.0.0.1:${jwks.port}`;
      server = await startServer({
        config: {
          public_listen: `127.0.0.1:${publicPort}`,
          jwt: { key_type: 'rsa-2048', issuer },
        },
      });
      google = await startGoogleStandIn({ provider: PROVIDER, issuer });
      const app = {
        tenantId: TENANT,
        clientId: APP,
        federated: [A, B].map((subject) => ({
          issuer,
          subject,
          audience: 'api://AzureADTokenExchange',
        })),
      };
      entra = await startEntraStandIn(app);
      entraTls = await startEntraStandIn(app, {
        key: readFileSync(tls.keyFile, 'utf8'),
        cert: readFileSync(tls.certFile, 'utf8'),
      });
      google.expiresIn = TOKEN_SECONDS;
      entra.expiresIn = TOKEN_SECONDS;
      entraTls.expiresIn = TOKEN_SECONDS;
      addr = `127.0.0.1:${await freePort()}`;
      const tokens = path.join(dir, 'tokens');
      config = path.join(dir, 'agent.yaml');
      const tokenFile = (audience: string, name: string) =>
        `    - { spiffe_id: "${A}", audience: "${audience}", path: ${tokens}/a/${name}, uid: ${UID_A}, gid: ${UID_A} }`;
      writeFileSync(
        config,
        [
          'cloud:',
          `  listen: "${addr}"`,
          `  gcp: {server_workload: gcs, project_id: orders-prod, project_number: "123456789", email: ${EMAIL}}`,
          // No azure.server_workload: the one azure server workload the caller is granted.
          `  token_dir: ${tokens}`,
          '  token_files:',
          tokenFile(`https:${PROVIDER}`, 'gcp.jwt'),
          tokenFile('api://AzureADTokenExchange', 'azure.jwt'),
          '',
        ].join('\n'),
      );
      const token = await adminClients(server.adminSocket).agents.createJoinToken({});
      agent = await startAgent(server, { joinToken: token.token, args: ['--config', config] });
      await adminClients(server.adminSocket).entries.batchCreateEntry({
        entries: [
          entry(A, token.agentSpiffeId, [`unix:uid:${UID_A}`]),
          entry(B, token.agentSpiffeId, [`unix:uid:${UID_B}`]),
          entry(C, token.agentSpiffeId, [`unix:uid:${UID_C}`]),
        ],
      });
      await admin('server-workload', 'create', '--name', 'gcs', '--protocol', 'gcp');
      await admin('server-workload', 'create', '--name', 'blob', '--protocol', 'azure');
      writeFileSync(
        path.join(dir, 'gcp.yaml'),
        `project_number: "123456789"\npool_id: tessera\nprovider_id: example-org\nsts_endpoint: ${google.url}/v1/token\n`,
      );
      writeFileSync(
        path.join(dir, 'azure.yaml'),
        `tenant_id: ${TENANT}\nclient_id: ${APP}\nscope: https://storage.azure.com/.default\nauthority_host: ${entra.url}\n`,
      );
      for (const [name, type, file] of [
        ['app-gcp', 'gcp-wif', 'gcp.yaml'],
        ['app-azure', 'azure-federated', 'azure.yaml'],
      ] as const) {
        await admin(
          ...['credential-provider', 'create', '--name', name, '--type', type],
          ...['--config', path.join(dir, file)],
        );
      }
      for (const [name, sw, provider] of [
        ['apps-gcs', 'gcs', 'app-gcp'],
        ['apps-blob', 'blob', 'app-azure'],
      ] as const) {
        await admin(
          ...['access-policy', 'create', '--name', name, '--client', 'spiffe://example.org/app/*'],
          ...['--server', sw, '--credential-provider', provider],
        );
      }
    });

    after(async () => {
      await agent?.stop();
      await server?.stop();
      await google?.close();
      await entra?.close();
      await entraTls?.close();
      await jwks?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    // Independent of each other (each waits for entries, policies and a renewed 20-second
    // token): run together.
    describe('every endpoint', { concurrency: true }, () => {
      it('google-auth-library on "GCE": each uid its own identity, refreshed before expiry', async () => {
        const env = await gce(UID_A);
        assert.deepEqual(env, { GCE_METADATA_HOST: addr });
        const started = Date.now();
        const a = await until(UID_A, env, ['google-adc', 'refresh'], (r) => r.ok !== undefined);
        assert.equal(a.ok?.['client'], 'Compute');
        assert.equal(google.federated.get(String(a.ok?.token)), A);
        assert.equal(google.federated.get(String(a.ok?.second)), A);
        assert.notEqual(a.ok?.second, a.ok?.token, 'a new token before the first expired');
        assert.equal(a.ok?.['email'], EMAIL);
        assert.equal(a.ok?.['projectId'], 'orders-prod');
        assert.equal(a.ok?.['universe'], 'googleapis.com');
        // The SDK schedules its refresh from expires_in: the stand-in's 20 s, less what has passed.
        const expiry = Number(a.ok?.['expiry']);
        assert.ok(
          expiry > started && expiry <= Date.now() + TOKEN_SECONDS * 1000,
          `expiry ${expiry}`,
        );
        const b = await until(UID_B, env, ['google-adc'], (r) => r.ok !== undefined);
        assert.equal(google.federated.get(String(b.ok?.token)), B);
      });

      it("google-auth-library ID tokens are the caller's JWT-SVIDs", async () => {
        const r = await sdk(UID_A, await gce(UID_A), 'google-id', 'https://orders.example.com/api');
        assert.ok(r.ok, JSON.stringify(r));
        const claims = decodeJwt(String(r.ok.token));
        assert.equal(claims.sub, A);
        assert.deepEqual([claims.aud].flat(), ['https://orders.example.com/api']);
      });

      it('google-auth-library external account: the SDK calls Google STS itself (URL and file sources)', async () => {
        const external = (uid: number, more: string[]) => [
          ...['--audience', PROVIDER, '--token-url', `${google.url}/v1/token`],
          ...['--project', 'orders-prod', '--config-file', path.join(home(uid), 'gcp.json')],
          ...more,
        ];
        // B has no token file: credential_source is the agent's identity URL.
        const envB = await cloudEnvAs(UID_B, 'gcp', external(UID_B, ['--cloud-address', addr]));
        const fileB = envB['GOOGLE_APPLICATION_CREDENTIALS'] ?? '';
        assert.equal(statSync(fileB).uid, UID_B);
        assert.equal(statSync(fileB).mode & 0o777, 0o600);
        // A's agent config lists a JWT-SVID file for the pool: credential_source is that file.
        const envA = await cloudEnvAs(UID_A, 'gcp', external(UID_A, ['--agent-config', config]));
        const before = google.requests.length;
        const [b, a] = await Promise.all([
          sdk(UID_B, envB, 'google-adc'),
          until(UID_A, envA, ['google-adc', 'refresh'], (r) => r.ok !== undefined),
        ]);
        assert.ok(b.ok, JSON.stringify(b));
        assert.equal(b.ok['client'], 'IdentityPoolClient');
        assert.equal(google.federated.get(String(b.ok.token)), B);
        assert.equal(a.ok?.['client'], 'IdentityPoolClient');
        assert.equal(google.federated.get(String(a.ok?.token)), A);
        assert.equal(google.federated.get(String(a.ok?.second)), A, 'refreshed from the file');
        // The SDKs themselves made the exchanges (not the agent's provider): their headers say so.
        const clients = google.requests
          .slice(before)
          .filter((q) => q.path === '/v1/token')
          .map((q) => String(q.headers['x-goog-api-client']));
        assert.ok(clients.some((c) => c.includes('google-byoid-sdk source/url')));
        assert.ok(clients.some((c) => c.includes('google-byoid-sdk source/file')));
      });

      it('@azure/identity IMDS: each uid its own identity, refreshed; the granted server workload', async () => {
        const env = await imds(UID_A);
        assert.deepEqual(env, { AZURE_POD_IDENTITY_AUTHORITY_HOST: `http://${addr}` });
        const started = Date.now();
        const [a, b] = await Promise.all([
          until(UID_A, env, ['azure-mi', 'refresh'], (r) => r.ok !== undefined),
          until(UID_B, env, ['azure-dac'], (r) => r.ok !== undefined),
        ]);
        assert.deepEqual(entra.issued.get(String(a.ok?.token)), {
          subject: A,
          scope: 'https://storage.azure.com/.default',
        });
        assert.equal(entra.issued.get(String(a.ok?.second))?.subject, A);
        assert.notEqual(a.ok?.second, a.ok?.token, 'a new token before the first expired');
        // MSAL reads expires_on: the stand-in's 20 s, less what has passed.
        const expiresOn = Number(a.ok?.['expiresOn']);
        assert.ok(expiresOn > started && expiresOn <= Date.now() + TOKEN_SECONDS * 1000);
        assert.equal(entra.issued.get(String(b.ok?.token))?.subject, B);
      });

      it("@azure/identity App Service: the identity header is the caller's own", async () => {
        const env = await cloudEnvAs(UID_A, 'azure', [
          ...['--cloud-address', addr, '--azure-source', 'app-service'],
        ]);
        assert.equal(env['IDENTITY_ENDPOINT'], `http://${addr}/msi/token`);
        const a = await until(UID_A, env, ['azure-mi'], (r) => r.ok !== undefined);
        assert.equal(entra.issued.get(String(a.ok?.token))?.subject, A, JSON.stringify(a));
        // Another uid holding A's header gets nothing.
        const b = await sdk(UID_B, env, 'azure-mi');
        assert.equal(b.ok, undefined);
        assert.match(String(b.error), /401|X-IDENTITY-HEADER/);
        assert.match(agent.output(), /X-IDENTITY-HEADER is not the caller's/);
      });

      it('@azure/identity workload identity: AZURE_FEDERATED_TOKEN_FILE against Entra over HTTPS', async () => {
        const env = await cloudEnvAs(UID_A, 'azure', [
          ...['--agent-config', config, '--tenant-id', TENANT, '--client-id', APP],
          ...['--authority-host', entraTls.url],
        ]);
        assert.deepEqual(env, {
          AZURE_FEDERATED_TOKEN_FILE: path.join(dir, 'tokens/a/azure.jwt'),
          AZURE_TENANT_ID: TENANT,
          AZURE_CLIENT_ID: APP,
          AZURE_AUTHORITY_HOST: entraTls.url,
        });
        const a = await until(
          UID_A,
          { ...env, NODE_EXTRA_CA_CERTS: caFile },
          ['azure-mi'],
          (r) => r.ok !== undefined,
        );
        assert.equal(entraTls.issued.get(String(a.ok?.token))?.subject, A, JSON.stringify(a));
      });

      it("bad requests get the platforms' answers before any attestation", async () => {
        const get = (p: string, headers: Record<string, string> = {}) =>
          fetch(`http://${addr}${p}`, { headers });
        const token = '/computeMetadata/v1/instance/service-accounts/default/token';
        let r = await get(token);
        assert.equal(r.status, 403);
        assert.equal(r.headers.get('metadata-flavor'), 'Google');
        assert.match(await r.text(), /Missing Metadata-Flavor:Google header/);
        r = await get(token, { 'Metadata-Flavor': 'Google', 'X-Forwarded-For': '203.0.113.9' });
        assert.equal(r.status, 403);
        assert.match(await r.text(), /x-forwarded-for/);
        r = await get('/computeMetadata/v1/instance/service-accounts/default/identity', {
          'Metadata-Flavor': 'Google',
        });
        assert.equal(r.status, 400);
        const imdsPath =
          '/metadata/identity/oauth2/token/?api-version=2018-02-01&resource=https://storage.azure.com/';
        r = await get(imdsPath);
        assert.equal(r.status, 400);
        assert.deepEqual(await r.json(), {
          error: 'invalid_request',
          error_description: 'Required metadata header not specified',
        });
        r = await get(imdsPath, { Metadata: 'true', 'X-Forwarded-For': '203.0.113.9' });
        assert.equal(r.status, 400);
        r = await get('/metadata/identity/oauth2/token/?resource=x', { Metadata: 'true' });
        assert.equal(r.status, 400);
        assert.match(
          String(((await r.json()) as { error_description: string }).error_description),
          /api-version/,
        );
        r = await get('/msi/token?api-version=2019-08-01&resource=x');
        assert.equal(r.status, 400);
        assert.match(agent.output(), /refused a proxied metadata request/);
      });
    });

    it("the clouds answering garbage: the SDKs get their platforms' 5xx, the agent says why", async () => {
      const [g, z] = [await gce(UID_C), await imds(UID_C)];
      google.misbehave = 'garbage';
      entra.misbehave = 'garbage';
      try {
        const [gf, zf] = await Promise.all([
          until(UID_C, g, ['google-adc'], (r) => r.ok === undefined),
          until(UID_C, z, ['azure-mi'], (r) => r.ok === undefined),
        ]);
        assert.equal(gf.status, 503, JSON.stringify(gf));
        assert.match(String(gf.error), /HTTP 502/);
        assert.match(String(zf.error), /unknown_error|HTTP 503/);
      } finally {
        google.misbehave = 'none';
        entra.misbehave = 'none';
      }
      assert.match(agent.output(), /no credential served: .*HTTP 502/);
      assert.match(agent.output(), /no credential served: .*HTTP 503/);
    });

    it("the clouds cannot fetch Tessera's JWKS: the SDKs get their platforms' errors, the agent says why", async () => {
      const [g, z] = [await gce(UID_C), await imds(UID_C)];
      jwks.cut();
      try {
        // Nothing failed was cached: C's next tokens need the clouds again.
        const [gf, zf] = await Promise.all([
          until(UID_C, g, ['google-adc'], (r) => r.ok === undefined),
          until(UID_C, z, ['azure-mi'], (r) => r.ok === undefined),
        ]);
        assert.equal(gf.status, 503, JSON.stringify(gf));
        assert.match(String(gf.error), /Unable to fetch the public keys/);
        assert.match(String(zf.error), /unknown_error|Unable to retrieve the signing keys/);
      } finally {
        jwks.restore();
      }
      assert.match(
        agent.output(),
        /no credential served: .*invalid_grant \(Unable to fetch the public keys from the OIDC issuer\.\)/,
      );
      assert.match(agent.output(), /no credential served: .*Unable to retrieve the signing keys/);
    });

    it('removing the access policies: the SDKs are refused', async () => {
      const [g, z] = [await gce(UID_A), await imds(UID_A)];
      const app = await cloudEnvAs(UID_A, 'azure', [
        ...['--cloud-address', addr, '--azure-source', 'app-service'],
      ]);
      await admin('access-policy', 'delete', 'apps-gcs');
      await admin('access-policy', 'delete', 'apps-blob');
      const [gr, zr, ar] = await Promise.all([
        until(UID_A, g, ['google-adc'], (r) => r.ok === undefined),
        until(UID_A, z, ['azure-mi'], (r) => r.ok === undefined),
        until(UID_A, app, ['azure-mi'], (r) => r.ok === undefined),
      ]);
      assert.equal(gr.status, 403);
      assert.match(String(gr.error), /denied/);
      // Azure's system-assigned identity is the granted server workload: now there is none.
      for (const r of [zr, ar]) {
        assert.match(String(r.error), /Identity not found|granted no server workload/);
      }
      assert.match(
        agent.output(),
        /no credential served: access to server workload \\"gcs\\" denied/,
      );
      assert.match(
        agent.output(),
        /no credential served: the caller is granted no server workload of protocol azure/,
      );
    });
  },
);
