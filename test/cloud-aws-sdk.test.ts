// The AWS SDK for JavaScript v3, unmodified, through its default credential chain with only
// environment variables set (from `tessera cloud env`, run as the workload's uid), against a real
// server and agent: IMDSv2, container credentials, a web-identity token file, and a profile's
// `credential_process` (`tessera cloud aws credential-process`). The AWS STS stand-in trusts
// Tessera only through its OIDC discovery document and JWKS (reached through a TCP proxy the test
// can cut); it issues 20-second credentials, so the SDK (which drops credentials 5 minutes before
// expiry) fetches new ones on every call. Two workloads of different uids on one agent get
// different identities; removing the policy refuses them.
import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type AwsStsStandIn,
  startAwsStsStandIn,
} from '../src/plugins/credential-providers/testing/aws-sts-stand-in.ts';
import { adminClients, entry } from './helpers/admin.ts';
import { startAgent, type AgentProcess } from './helpers/agent-process.ts';
import { runCli } from './helpers/cli-process.ts';
import { cloudEnvAs, runAs } from './helpers/cloud-workload.ts';
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
const ROLE = 'arn:aws:iam::123456789012:role/app-reader';
const CHILD = path.join(import.meta.dirname, 'helpers/aws-sdk-child.ts');
const root = process.getuid?.() === 0;

interface Creds {
  accessKeyId: string;
  sessionToken: string;
  expiration: string | null;
}
type SdkAnswer = { first?: Creds; second?: Creds; error?: string };

async function sdk(uid: number, env: Record<string, string>, mode = 'once'): Promise<SdkAnswer> {
  const r = await runAs(uid, [CHILD, mode], { AWS_REGION: 'us-east-1', ...env });
  try {
    return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '') as SdkAnswer;
  } catch {
    return { error: `no answer (exit ${r.code}): ${r.stderr.slice(0, 500)}` };
  }
}

/** `tessera cloud env --cloud aws ... --output json` as `uid`: the variables it prints. */
const cloudEnv = (uid: number, args: string[]) => cloudEnvAs(uid, 'aws', args);

function request(
  port: number,
  method: string,
  p: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers, agent: false });
    req.once('error', reject);
    req.once('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.end();
  });
}

describe(
  'AWS SDK against the agent',
  { skip: !root && 'needs root to run workloads as other uids' },
  () => {
    let server: ServerProcess;
    let agent: AgentProcess;
    let sts: AwsStsStandIn;
    /** The STS the SDK calls itself (web identity): 20-second credentials for its default hour. */
    let webSts: AwsStsStandIn;
    let jwks: TcpProxy;
    let dir: string;
    let tokens: string;
    let agentConfig: string;
    let cloudPort: number;
    const admin = async (...args: string[]) => {
      const r = await runCli(args, { env: { TESSERA_ADMIN_SOCKET: server.adminSocket } });
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    };
    /** The SDK as `uid` until `done` (entries and policies reach the agent). */
    async function until(
      uid: number,
      env: Record<string, string>,
      done: (a: SdkAnswer) => boolean,
      mode = 'once',
    ) {
      let a: SdkAnswer = {};
      await waitFor(async () => done((a = await sdk(uid, env, mode))), 60_000).catch(() =>
        assert.fail(`no final answer: ${JSON.stringify(a)}`),
      );
      return a;
    }
    const issued = (key: string | undefined) =>
      [...sts.issued, ...(webSts?.issued ?? [])].find((c) => c.accessKeyId === key);

    before(async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-cloud-aws-'));
      chmodSync(dir, 0o755); // the workloads read the agent config (cloud env) and their token files
      tokens = path.join(dir, 'tokens');
      const publicPort = await freePort();
      jwks = await new TcpProxy(publicPort).start();
      const issuer = `http://127.0.0.1:${jwks.port}`;
      server = await startServer({
        config: {
          public_listen: `127.0.0.1:${publicPort}`,
          jwt: { key_type: 'rsa-2048', issuer },
        },
      });
      // 20-second credentials: the role's 900 s minimum session, issued on a clock 880 s behind.
      sts = await startAwsStsStandIn(
        {
          arn: ROLE,
          issuer,
          audience: 'sts.amazonaws.com',
          subjects: ['spiffe://example.org/app/*'],
        },
        () => Date.now() - 880_000,
      );
      webSts = await startAwsStsStandIn(
        {
          arn: ROLE,
          issuer,
          audience: 'sts.amazonaws.com',
          subjects: ['spiffe://example.org/app/*'],
        },
        () => Date.now() - 3_580_000,
      );
      cloudPort = await freePort();
      agentConfig = path.join(dir, 'agent.yaml');
      writeFileSync(
        agentConfig,
        [
          'cloud:',
          `  listen: 127.0.0.1:${cloudPort}`,
          `  token_dir: ${tokens}`,
          '  token_files:',
          `    - { spiffe_id: "${A}", audience: sts.amazonaws.com, path: ${tokens}/a/web-identity.jwt, uid: ${UID_A}, gid: ${UID_A} }`,
          '  aws_container_token_files:',
          `    - { path: ${tokens}/a/container-token, uid: ${UID_A}, gid: ${UID_A} }`,
          `    - { path: ${tokens}/b/container-token, uid: ${UID_B}, gid: ${UID_B} }`,
          '',
        ].join('\n'),
      );
      const token = await adminClients(server.adminSocket).agents.createJoinToken({});
      agent = await startAgent(server, { joinToken: token.token, args: ['--config', agentConfig] });
      await adminClients(server.adminSocket).entries.batchCreateEntry({
        entries: [
          entry(A, token.agentSpiffeId, [`unix:uid:${UID_A}`]),
          entry(B, token.agentSpiffeId, [`unix:uid:${UID_B}`]),
          entry(C, token.agentSpiffeId, [`unix:uid:${UID_C}`]),
        ],
      });
      await admin('server-workload', 'create', '--name', 's3', '--protocol', 'aws');
      writeFileSync(
        path.join(dir, 'aws.yaml'),
        `role_arn: ${ROLE}\nsts_endpoint: ${sts.url}\nduration: 15m\n`,
      );
      await admin(
        ...['credential-provider', 'create', '--name', 'app-aws', '--type', 'aws-sts'],
        ...['--config', path.join(dir, 'aws.yaml')],
      );
      await admin(
        ...[
          'access-policy',
          'create',
          '--name',
          'apps-s3',
          '--client',
          'spiffe://example.org/app/*',
        ],
        ...['--server', 's3', '--credential-provider', 'app-aws'],
      );
    });

    after(async () => {
      await agent?.stop();
      await server?.stop();
      await sts?.close();
      await webSts?.close();
      await jwks?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    // Independent of each other (each waits for the provider to renew a 20-second credential):
    // run together.
    describe('every path', { concurrency: true }, () => {
      it('IMDSv2: two uids get credentials of their own identities, refreshed before expiry', async () => {
        const env = await cloudEnv(UID_A, ['--agent-config', agentConfig]);
        assert.deepEqual(env, {
          AWS_EC2_METADATA_SERVICE_ENDPOINT: `http://127.0.0.1:${cloudPort}`,
          AWS_EC2_METADATA_V1_DISABLED: 'true',
        });
        const a = await until(UID_A, env, (x) => x.second !== undefined, 'refresh');
        assert.equal(issued(a.first?.accessKeyId)?.subject, A);
        assert.equal(issued(a.first?.accessKeyId)?.sessionToken, a.first?.sessionToken);
        assert.equal(issued(a.second?.accessKeyId)?.subject, A);
        assert.notEqual(a.second?.accessKeyId, a.first?.accessKeyId, 'refreshed');
        assert.ok(Date.parse(a.second?.expiration ?? '') > Date.parse(a.first?.expiration ?? ''));
        const b = await until(UID_B, env, (x) => x.first !== undefined);
        assert.equal(issued(b.first?.accessKeyId)?.subject, B);
        assert.equal(issued(b.first?.accessKeyId)?.sessionName, 'example.org+app+billing');
      });

      it('container credentials: the token file of the caller uid, the server workload in the URL', async () => {
        const env = await cloudEnv(UID_A, [
          '--agent-config',
          agentConfig,
          '--server-workload',
          's3',
        ]);
        assert.equal(
          env['AWS_CONTAINER_CREDENTIALS_FULL_URI'],
          `http://127.0.0.1:${cloudPort}/aws/container-credentials/s3`,
        );
        const file = env['AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE'] ?? '';
        assert.equal(file, `${tokens}/a/container-token`);
        const st = statSync(file);
        assert.equal(st.uid, UID_A);
        assert.equal(st.mode & 0o777, 0o600);
        const a = await until(UID_A, env, (x) => x.second !== undefined, 'refresh');
        assert.equal(issued(a.first?.accessKeyId)?.subject, A);
        assert.notEqual(a.second?.accessKeyId, a.first?.accessKeyId);
        // B cannot read A's token file; with its content (another uid's token) it is refused.
        const stolen = path.join(dir, 'stolen-token');
        writeFileSync(stolen, readFileSync(file), { mode: 0o644 });
        const b = await sdk(UID_B, { ...env, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: stolen });
        assert.match(b.error ?? '', /Could not load credentials/);
        assert.match(
          agent.output(),
          new RegExp(`request refused: the Authorization token is not the one of uid ${UID_B}`),
        );
      });

      it('web identity: the agent keeps the JWT-SVID file fresh, the SDK calls STS itself and refreshes', async () => {
        const file = `${tokens}/a/web-identity.jwt`;
        await waitFor(() => existsSync(file), 60_000);
        const jwt = readFileSync(file, 'utf8');
        assert.match(jwt, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'the JWT exactly, no newline');
        assert.equal(statSync(file).uid, UID_A);
        const env = await cloudEnv(UID_A, ['--agent-config', agentConfig, '--role-arn', ROLE]);
        assert.deepEqual(env, { AWS_WEB_IDENTITY_TOKEN_FILE: file, AWS_ROLE_ARN: ROLE });
        const a = await sdk(UID_A, { ...env, AWS_ENDPOINT_URL_STS: webSts.url }, 'refresh');
        assert.equal(issued(a.first?.accessKeyId)?.subject, A, JSON.stringify(a));
        assert.equal(issued(a.second?.accessKeyId)?.subject, A);
        assert.notEqual(a.second?.accessKeyId, a.first?.accessKeyId, 'refreshed');
      });

      it('credential_process: a profile running `tessera cloud aws credential-process`', async () => {
        const profile = path.join(dir, 'aws-config');
        writeFileSync(
          profile,
          [
            '[profile orders]',
            `credential_process = ${REPO}/bin/tessera cloud aws credential-process --role s3 --workload-socket ${agent.socketPath}`,
            '',
          ].join('\n'),
        );
        const env = { AWS_CONFIG_FILE: profile, AWS_PROFILE: 'orders' };
        const a = await until(UID_A, env, (x) => x.second !== undefined, 'refresh');
        assert.equal(issued(a.first?.accessKeyId)?.subject, A, JSON.stringify(a));
        assert.equal(issued(a.second?.accessKeyId)?.subject, A);
        assert.notEqual(a.second?.accessKeyId, a.first?.accessKeyId, 'refreshed');
        const b = await sdk(UID_B, env);
        assert.equal(issued(b.first?.accessKeyId)?.subject, B, JSON.stringify(b));
      });

      it('bad IMDS requests get the status codes EC2 gives', async () => {
        const put = (h: Record<string, string>) =>
          request(cloudPort, 'PUT', '/latest/api/token', h);
        assert.equal((await put({})).status, 400);
        assert.equal((await put({ 'x-aws-ec2-metadata-token-ttl-seconds': '0' })).status, 400);
        assert.equal((await put({ 'x-aws-ec2-metadata-token-ttl-seconds': '21601' })).status, 400);
        assert.equal(
          (
            await put({
              'x-aws-ec2-metadata-token-ttl-seconds': '60',
              'x-forwarded-for': '10.0.0.1',
            })
          ).status,
          403,
        );
        const creds = '/latest/meta-data/iam/security-credentials/';
        assert.equal((await request(cloudPort, 'GET', creds, {})).status, 401);
        assert.equal(
          (await request(cloudPort, 'GET', creds, { 'x-aws-ec2-metadata-token': 'made-up' }))
            .status,
          401,
        );
        // A token is bound to the process that asked: another process presenting it is refused.
        const mine = await put({ 'x-aws-ec2-metadata-token-ttl-seconds': '60' });
        assert.equal(mine.status, 200);
        const script = `const r = await fetch('http://127.0.0.1:${cloudPort}${creds}', { headers: { 'x-aws-ec2-metadata-token': ${JSON.stringify(mine.body)} } }); console.log(r.status);`;
        const foreign = await runAs(UID_A, ['--input-type=module', '-e', script], {});
        assert.equal(foreign.stdout.trim(), '401', foreign.stderr);
        // Expired (TTL 1 s).
        const short = await put({ 'x-aws-ec2-metadata-token-ttl-seconds': '1' });
        await new Promise((r) => setTimeout(r, 1500));
        assert.equal(
          (await request(cloudPort, 'GET', creds, { 'x-aws-ec2-metadata-token': short.body }))
            .status,
          401,
        );
        // The agent logs after answering: wait for the lines (bounded).
        for (const line of [
          /AWS IMDS request refused: the session token was issued to another process/,
          /AWS IMDS request refused: the session token has expired/,
        ]) {
          await waitFor(() => line.test(agent.output()), 10_000).catch(() =>
            assert.match(agent.output(), line),
          );
        }
      });
    });

    it('an STS answering garbage: the SDK gets an error, the agent logs why', async () => {
      const env = await cloudEnv(UID_C, ['--agent-config', agentConfig]);
      sts.misbehave = 'garbage';
      try {
        const c = await until(UID_C, env, (x) => x.error !== undefined);
        assert.match(c.error ?? '', /Could not load credentials|CredentialsProviderError/);
      } finally {
        sts.misbehave = 'none';
      }
      assert.match(
        agent.output(),
        /AWS IMDS request refused: .*AWS STS .*the answer is not an AssumeRoleWithWebIdentity result/,
      );
    });

    it("STS cannot fetch Tessera's JWKS: the SDK gets an error, the agent logs why", async () => {
      const env = await cloudEnv(UID_C, ['--agent-config', agentConfig]);
      jwks.cut();
      try {
        const c = await until(UID_C, env, (x) => x.error !== undefined);
        assert.match(c.error ?? '', /Could not load credentials|CredentialsProviderError/);
      } finally {
        jwks.restore();
      }
      assert.match(
        agent.output(),
        /AWS IMDS request refused: .*IDPCommunicationError \(Couldn't retrieve verification key from your identity provider\)/,
      );
    });

    it('removing the policy refuses the SDK on every path', async () => {
      const imds = await cloudEnv(UID_A, ['--agent-config', agentConfig]);
      const container = await cloudEnv(UID_A, [
        ...['--agent-config', agentConfig, '--server-workload', 's3'],
      ]);
      const profile = path.join(dir, 'aws-config');
      await admin('access-policy', 'delete', 'apps-s3');
      const [i, c, p] = await Promise.all([
        until(UID_A, imds, (x) => x.error !== undefined),
        until(UID_A, container, (x) => x.error !== undefined),
        until(
          UID_A,
          { AWS_CONFIG_FILE: profile, AWS_PROFILE: 'orders' },
          (x) => x.error !== undefined,
        ),
      ]);
      for (const x of [i, c]) {
        assert.match(x.error ?? '', /CredentialsProviderError|Could not load credentials/);
      }
      // The chain reports the profile's failure (the CLI's denial on its stderr) or gives up.
      assert.match(p.error ?? '', /denied|Could not load credentials/);
      assert.match(agent.output(), /granted no server workload of protocol aws/);
      assert.match(agent.output(), /credentials request refused: .*denied/);
    });
  },
);
