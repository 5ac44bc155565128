// Cloud credentials end to end (issue 12, broker side): a real server whose public listener
// serves OIDC discovery and the JWKS (RSA JWT authority, as Entra requires), a real agent, the
// real CLI, and stand-ins of AWS STS, Google STS and Entra ID that trust the server only through
// that discovery document and JWKS. Two workloads of different uids on one agent get different
// cloud identities from the same aws-sts provider; one gets a Google and an Azure token as well;
// removing the policy stops the release.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type AwsStsStandIn,
  startAwsStsStandIn,
} from '../src/plugins/credential-providers/testing/aws-sts-stand-in.ts';
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
import { CLI, startServer, type ServerProcess } from './helpers/server-process.ts';

const UID_A = 1520;
const UID_B = 1521;
const A = 'spiffe://example.org/app/orders';
const B = 'spiffe://example.org/app/billing';
const ROLE = 'arn:aws:iam::123456789012:role/app-reader';
const PROVIDER =
  '//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/tessera/providers/example-org';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const APP = '0b6c9a4e-1f2d-4c3b-8a7e-9d5f6e4c3b2a';
const root = process.getuid?.() === 0;

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `tessera credential get` as `uid`. Asynchronous on purpose: the cloud stand-ins live in this
 * process and must keep answering while the CLI waits for the server.
 */
function getAs(uid: number, server: string, socket: string): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      process.execPath,
      [
        CLI,
        'credential',
        'get',
        '--server',
        server,
        '--output',
        'json',
        '--workload-socket',
        socket,
      ],
      {
        uid,
        gid: uid,
        env: { PATH: process.env['PATH'] ?? '', HOME: '/tmp', TESSERA_LOG_LEVEL: 'silent' },
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 60_000,
      },
    );
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.once('error', reject);
    p.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe(
  'cloud credentials end to end',
  { skip: !root && 'needs root to run workloads as other uids' },
  () => {
    let server: ServerProcess;
    let agent: AgentProcess;
    let aws: AwsStsStandIn;
    let google: GoogleStandIn;
    let entra: EntraStandIn;
    let dir: string;
    const admin = async (...args: string[]) => {
      const r = await runCli(args, { env: { TESSERA_ADMIN_SOCKET: server.adminSocket } });
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    };

    /** `credential get` as `uid` until `done` (entries and policies reach the agent). */
    async function until(uid: number, sw: string, done: (r: Finished) => boolean) {
      let r: Finished | undefined;
      await waitFor(async () => {
        r = await getAs(uid, sw, agent.socketPath);
        return done(r);
      }, 30_000).catch(() => assert.fail(`no final answer: ${JSON.stringify(r)}`));
      return r as Finished;
    }

    before(async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-cloud-e2e-'));
      const publicPort = await freePort();
      const issuer = `http://127.0.0.1:${publicPort}`;
      server = await startServer({
        config: { public_listen: `127.0.0.1:${publicPort}`, jwt: { key_type: 'rsa-2048' } },
      });
      aws = await startAwsStsStandIn({
        arn: ROLE,
        issuer,
        audience: 'sts.amazonaws.com',
        subjects: ['spiffe://example.org/app/*'],
      });
      google = await startGoogleStandIn({ provider: PROVIDER, issuer });
      entra = await startEntraStandIn({
        tenantId: TENANT,
        clientId: APP,
        federated: [{ issuer, subject: A, audience: 'api://AzureADTokenExchange' }],
      });
      const token = await adminClients(server.adminSocket).agents.createJoinToken({});
      agent = await startAgent(server, { joinToken: token.token });
      await adminClients(server.adminSocket).entries.batchCreateEntry({
        entries: [
          entry(A, token.agentSpiffeId, [`unix:uid:${UID_A}`]),
          entry(B, token.agentSpiffeId, [`unix:uid:${UID_B}`]),
        ],
      });
      await admin('server-workload', 'create', '--name', 's3', '--protocol', 'aws');
      await admin('server-workload', 'create', '--name', 'gcs', '--protocol', 'gcp');
      await admin('server-workload', 'create', '--name', 'blob', '--protocol', 'azure');
      writeFileSync(
        path.join(dir, 'aws.yaml'),
        `role_arn: ${ROLE}\nsts_endpoint: ${aws.url}\nduration: 1h\n`,
      );
      writeFileSync(
        path.join(dir, 'gcp.yaml'),
        `project_number: "123456789"\npool_id: tessera\nprovider_id: example-org\nsts_endpoint: ${google.url}/v1/token\n`,
      );
      writeFileSync(
        path.join(dir, 'azure.yaml'),
        `tenant_id: ${TENANT}\nclient_id: ${APP}\nscope: https://storage.azure.com/.default\nauthority_host: ${entra.url}\n`,
      );
      for (const [name, type, file] of [
        ['app-aws', 'aws-sts', 'aws.yaml'],
        ['app-gcp', 'gcp-wif', 'gcp.yaml'],
        ['app-azure', 'azure-federated', 'azure.yaml'],
      ] as const) {
        await admin(
          ...['credential-provider', 'create', '--name', name, '--type', type],
          ...['--config', path.join(dir, file)],
        );
      }
      for (const [name, sw, provider] of [
        ['apps-s3', 's3', 'app-aws'],
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
      await aws?.close();
      await google?.close();
      await entra?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('two workloads on one agent get AWS credentials of their own identity', async () => {
      const a = JSON.parse((await until(UID_A, 's3', (r) => r.code === 0)).stdout) as {
        aws: { accessKeyId: string; secretAccessKey: string; sessionToken: string };
        expiresAt: string;
        spiffeId: string;
      };
      const b = JSON.parse((await until(UID_B, 's3', (r) => r.code === 0)).stdout) as typeof a;
      const issued = (k: string) => aws.issued.find((c) => c.accessKeyId === k);
      assert.equal(issued(a.aws.accessKeyId)?.subject, A);
      assert.equal(issued(a.aws.accessKeyId)?.sessionName, 'example.org+app+orders');
      assert.equal(issued(a.aws.accessKeyId)?.sessionToken, a.aws.sessionToken);
      assert.equal(issued(b.aws.accessKeyId)?.subject, B);
      assert.notEqual(a.aws.accessKeyId, b.aws.accessKeyId);
      assert.equal(
        Date.parse(a.expiresAt),
        Date.parse(issued(a.aws.accessKeyId)?.expiration ?? ''),
      );
    });

    it('Google and Azure tokens for the workload the clouds trust', async () => {
      const g = JSON.parse((await until(UID_A, 'gcs', (r) => r.code === 0)).stdout) as {
        token: string;
      };
      assert.equal(google.federated.get(g.token), A);
      const z = JSON.parse((await until(UID_A, 'blob', (r) => r.code === 0)).stdout) as {
        token: string;
      };
      assert.deepEqual(entra.issued.get(z.token), {
        subject: A,
        scope: 'https://storage.azure.com/.default',
      });
      // B is allowed by the policy but has no federated credential in Entra: the cloud refuses,
      // and the workload learns why (code and AADSTS text), never the assertion.
      const refused = await until(UID_B, 'blob', (r) => r.code !== null && r.code !== 0);
      assert.match(refused.stderr, /invalid_client \(AADSTS700213: No matching federated identity/);
      assert.doesNotMatch(refused.stderr, /eyJ/);
    });

    it('removing the policy stops the release', async () => {
      await admin('access-policy', 'delete', 'apps-s3');
      const r = await until(UID_A, 's3', (x) => x.code !== 0);
      assert.equal(r.code, 5);
      assert.equal(
        r.stderr.trim(),
        `error: access to server workload "s3" denied for ${A}: no-matching-policy`,
      );
    });
  },
);
