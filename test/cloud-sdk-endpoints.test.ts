// Issue 12, Google Cloud and Azure: unmodified SDKs (google-auth-library, @azure/identity) get
// credentials from a real agent's cloud endpoints through their default chains, configured by
// environment variables only. A real server (RSA JWT authority, public listener serving OIDC
// discovery and JWKS) and agent; stand-ins of Google STS and Entra ID that trust the server only
// through that discovery document and JWKS. Workloads run as two uids, so as two identities.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { azureEnv } from '../src/cli/cloud-env/azure.ts';
import { gcpEnv } from '../src/cli/cloud-env/gcp.ts';
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
import { freePort, waitFor } from './helpers/ports.ts';
import { REPO, startServer, type ServerProcess } from './helpers/server-process.ts';

const UID_A = 1530;
const UID_B = 1531;
const A = 'spiffe://example.org/app/orders';
const B = 'spiffe://example.org/app/billing';
const PROVIDER =
  '//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/tessera/providers/example-org';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const APP = '0b6c9a4e-1f2d-4c3b-8a7e-9d5f6e4c3b2a';
const EMAIL = 'orders@orders-prod.iam.gserviceaccount.com';
const CHILD = path.join(REPO, 'test/helpers/cloud-sdk-child.ts');
const root = process.getuid?.() === 0;

interface SdkResult {
  ok?: Record<string, unknown> & { token?: string };
  error?: string;
  status?: number;
}

/** The SDK child as `uid` with only `env` (and PATH, HOME) set. */
function sdk(uid: number, env: Record<string, string>, ...args: string[]): Promise<SdkResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CHILD, ...args], {
      uid,
      gid: uid,
      env: { PATH: process.env['PATH'] ?? '', HOME: '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 90_000,
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.once('error', reject);
    p.once('close', () => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as SdkResult);
      } catch {
        resolve({ error: `no JSON from the child: ${out} ${err}` });
      }
    });
  });
}

describe(
  'cloud SDKs through the agent',
  { skip: !root && 'needs root to run workloads as other uids' },
  () => {
    let server: ServerProcess;
    let agent: AgentProcess;
    let google: GoogleStandIn;
    let entra: EntraStandIn;
    let dir: string;
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
    const gce = () => gcpEnv({ agentAddress: addr }).env;
    const imds = () => azureEnv({ agentAddress: addr }).env;

    before(async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-cloud-sdk-'));
      chmodSync(dir, 0o755); // the workloads (other uids) read their credential configs here
      const publicPort = await freePort();
      const issuer = `http://127.0.0.1:${publicPort}`;
      server = await startServer({
        config: { public_listen: `127.0.0.1:${publicPort}`, jwt: { key_type: 'rsa-2048' } },
      });
      google = await startGoogleStandIn({ provider: PROVIDER, issuer });
      entra = await startEntraStandIn({
        tenantId: TENANT,
        clientId: APP,
        federated: [A, B].map((subject) => ({
          issuer,
          subject,
          audience: 'api://AzureADTokenExchange',
        })),
      });
      addr = `127.0.0.1:${await freePort()}`;
      const config = path.join(dir, 'agent.yaml');
      writeFileSync(
        config,
        [
          'cloud:',
          `  listen: "${addr}"`,
          '  gcp: {server_workload: gcs, project_id: orders-prod, project_number: "123456789", email: ' +
            EMAIL +
            '}',
          '  azure: {server_workload: blob}',
          '',
        ].join('\n'),
      );
      const token = await adminClients(server.adminSocket).agents.createJoinToken({});
      agent = await startAgent(server, { joinToken: token.token, args: ['--config', config] });
      await adminClients(server.adminSocket).entries.batchCreateEntry({
        entries: [
          entry(A, token.agentSpiffeId, [`unix:uid:${UID_A}`]),
          entry(B, token.agentSpiffeId, [`unix:uid:${UID_B}`]),
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
      await admin(
        'credential-provider',
        'create',
        '--name',
        'app-gcp',
        '--type',
        'gcp-wif',
        '--config',
        path.join(dir, 'gcp.yaml'),
      );
      await admin(
        'credential-provider',
        'create',
        '--name',
        'app-azure',
        '--type',
        'azure-federated',
        '--config',
        path.join(dir, 'azure.yaml'),
      );
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
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('google-auth-library on "GCE": each uid gets a token of its own identity', async () => {
      const a = await until(UID_A, gce(), ['google-adc'], (r) => r.ok !== undefined);
      assert.equal(a.ok?.['client'], 'Compute');
      assert.equal(google.federated.get(String(a.ok?.token)), A);
      assert.equal(a.ok?.['email'], EMAIL);
      assert.equal(a.ok?.['projectId'], 'orders-prod');
      assert.equal(a.ok?.['universe'], 'googleapis.com');
      // The SDK schedules its refresh from expires_in: the stand-in's hour, less what has passed.
      const left = Number(a.ok?.['expiry']) - Date.now();
      assert.ok(left > 50 * 60_000 && left <= 3600_000, `expiry in ${left} ms`);
      // Google STS answering garbage: B's first token cannot be made; the SDK sees a 503 (after
      // its retries) and the agent says why. Nothing failed is cached: B succeeds afterwards.
      google.misbehave = 'garbage';
      try {
        const failed = await sdk(UID_B, gce(), 'google-adc');
        assert.equal(failed.status, 503, JSON.stringify(failed));
        assert.match(String(failed.error), /HTTP 502/);
      } finally {
        google.misbehave = 'none';
      }
      assert.match(agent.output(), /no credential served: .*HTTP 502/);
      const b = await until(UID_B, gce(), ['google-adc'], (r) => r.ok !== undefined);
      assert.equal(google.federated.get(String(b.ok?.token)), B);
      assert.notEqual(a.ok?.token, b.ok?.token);
    });

    it("google-auth-library ID tokens are the caller's JWT-SVIDs", async () => {
      const r = await sdk(UID_A, gce(), 'google-id', 'https://orders.example.com/api');
      assert.ok(r.ok, JSON.stringify(r));
      const claims = decodeJwt(String(r.ok.token));
      assert.equal(claims.sub, A);
      assert.deepEqual([claims.aud].flat(), ['https://orders.example.com/api']);
    });

    it("google-auth-library external account: the SDK calls Google STS with the agent's JWT-SVID", async () => {
      const configPath = path.join(dir, `external-${UID_A}.json`);
      const out = gcpEnv({
        agentAddress: addr,
        audience: PROVIDER,
        configPath,
        tokenUrl: `${google.url}/v1/token`,
        projectId: 'orders-prod',
      });
      for (const f of out.files ?? []) writeFileSync(f.path, f.content, { mode: 0o644 });
      const before = google.requests.length;
      const r = await sdk(UID_A, out.env, 'google-adc');
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.ok['client'], 'IdentityPoolClient');
      assert.equal(google.federated.get(String(r.ok.token)), A);
      // The SDK itself made the exchange (not the agent's provider): its client header says so.
      const sts = google.requests.slice(before).find((q) => q.path === '/v1/token');
      assert.match(String(sts?.headers['x-goog-api-client']), /google-byoid-sdk source\/url/);
    });

    it('@azure/identity IMDS: ManagedIdentityCredential and DefaultAzureCredential', async () => {
      const a = await until(UID_A, imds(), ['azure-mi'], (r) => r.ok !== undefined);
      assert.deepEqual(entra.issued.get(String(a.ok?.token)), {
        subject: A,
        scope: 'https://storage.azure.com/.default',
      });
      // MSAL reads expires_on: the token lives the Entra stand-in's 3599 s, less what has passed.
      const left = Number(a.ok?.['expiresOn']) - Date.now();
      assert.ok(left > 50 * 60_000 && left <= 3600_000, `expires in ${left} ms`);
      entra.misbehave = 'garbage';
      try {
        const failed = await sdk(UID_B, imds(), 'azure-mi');
        assert.equal(failed.ok, undefined);
        assert.match(String(failed.error), /unknown_error|HTTP 503/);
      } finally {
        entra.misbehave = 'none';
      }
      const b = await until(UID_B, imds(), ['azure-dac'], (r) => r.ok !== undefined);
      assert.equal(entra.issued.get(String(b.ok?.token))?.subject, B);
    });

    it("@azure/identity App Service: the identity header is the caller's own", async () => {
      const h = await sdk(UID_A, {}, 'azure-header', addr);
      assert.ok(h.ok, JSON.stringify(h));
      const env = azureEnv({ agentAddress: addr, identityHeader: String(h.ok['header']) }).env;
      const a = await sdk(UID_A, env, 'azure-mi');
      assert.equal(entra.issued.get(String(a.ok?.token))?.subject, A, JSON.stringify(a));
      // Another uid holding A's header gets nothing.
      const b = await sdk(UID_B, env, 'azure-mi');
      assert.equal(b.ok, undefined);
      assert.match(String(b.error), /401|X-IDENTITY-HEADER/);
      assert.match(agent.output(), /X-IDENTITY-HEADER is not the caller's/);
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

    it('removing the access policy: the SDKs are refused', async () => {
      await admin('access-policy', 'delete', 'apps-gcs');
      await admin('access-policy', 'delete', 'apps-blob');
      const g = await until(UID_A, gce(), ['google-adc'], (r) => r.ok === undefined);
      assert.equal(g.status, 403);
      assert.match(String(g.error), /denied/);
      const z = await until(UID_A, imds(), ['azure-mi'], (r) => r.ok === undefined);
      assert.match(String(z.error), /access_denied|denied/);
      assert.match(
        agent.output(),
        /no credential served: access to server workload \\"gcs\\" denied/,
      );
    });
  },
);
