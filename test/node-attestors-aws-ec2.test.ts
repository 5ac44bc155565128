// Black-box: aws_iid with `ec2_api` — a real server (its AWS credentials in the standard
// environment variables) and agents attesting through an IMDSv2 stand-in; the server asks a local
// EC2 API stand-in (SigV4 verified with the AWS SDK's signer) for the instance's tags, security
// groups and instance profile. The node gets those selectors; an EC2 API error refuses the
// attestation with EC2's words, audited, and records no node. When the node attests again with
// other tags, a workload whose entry condition reads `node.tags` is re-checked within 5 s. With
// `ec2_api.refresh_interval` (1 s here) the server also re-describes the running instance: a tag
// changed in EC2 flips that workload without any re-attestation, within the interval + 5 s, audited
// as `node.attributes_refreshed`; an EC2 error while refreshing keeps the record, audited.
// The 5 s figures are the target, printed with what each flip took; a test fails only past
// BUSY_FACTOR times them: a loaded CI machine must not fail it, while a flip that waited for some
// other event (a periodic resync, a re-attestation) still would.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { adminClients, entry, type AdminClients } from './helpers/admin.ts';
import { startAgent, type AgentProcess } from './helpers/agent-process.ts';
import { type AwsSigner, identityDocument, makeAwsSigner, signIid } from './helpers/aws-iid.ts';
import { type MetadataStandIn, awsImds } from './helpers/cloud-metadata.ts';
import { type Ec2StandIn, ec2Error, startEc2StandIn } from './helpers/ec2-api.ts';
import { waitFor } from './helpers/ports.ts';
import { UID, serves } from './helpers/serving-agent.ts';
import { runCli } from './helpers/cli-process.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';

const DEADLINE_MS = 60_000;
const SLOW = { timeout: 5 * DEADLINE_MS };
const CREDS = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  sessionToken: 'FQoGZXIvYXdzEXAMPLE//session',
};
const AGENT = 'spiffe://example.org/spire/agent/aws_iid/111122223333/us-west-2/i-1234567890abcdef0';
const OTHER = 'i-0fedcba9876543210';
const GUARDED = 'spiffe://example.org/ec2/prod-only';
const PLAIN = 'spiffe://example.org/ec2/plain';
const REFRESH_MS = 1_000;
const BUSY_FACTOR = 6;

/** Polls until `ok` (failing past BUSY_FACTOR × `ms`); prints and returns the ms it took. */
async function within(ms: number, ok: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await ok()) {
      const took = Date.now() - started;
      console.log(`# flipped in ${took} ms (target ${ms} ms)`);
      return took;
    }
    if (Date.now() - started > ms * BUSY_FACTOR) {
      assert.fail(`not within ${ms * BUSY_FACTOR} ms (target ${ms} ms)`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('aws_iid with the EC2 API, black box', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-ec2-'));
  let aws: AwsSigner;
  let imds: MetadataStandIn;
  let ec2: Ec2StandIn;
  let server: ServerProcess;
  let admin: AdminClients;
  let evidence = { document: '', pkcs7: '' };
  const agents: AgentProcess[] = [];
  /** What the EC2 stand-in describes (read at each request: tags can change). */
  const instance = {
    ownerId: '111122223333',
    instanceId: 'i-1234567890abcdef0',
    tags: [['env', 'prod']] as [string, string][],
    groups: [['sg-0123456789abcdef0', 'web']] as [string, string][],
    instanceProfileArn: 'arn:aws:iam::111122223333:instance-profile/payments-api',
  };

  before(async () => {
    aws = makeAwsSigner('aws');
    const doc = identityDocument();
    evidence = { document: doc, pkcs7: signIid(doc, [aws]) };
    imds = await awsImds(() => evidence);
    ec2 = await startEc2StandIn(CREDS, instance);
    server = await startServer({
      env: {
        AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
        AWS_SESSION_TOKEN: CREDS.sessionToken,
      },
      config: {
        node_attestors: {
          aws_iid: {
            account_ids: ['111122223333'],
            ca_certificates_file: aws.certFile,
            ec2_api: { endpoint: ec2.url, refresh_interval: `${REFRESH_MS}ms` },
          },
        },
      },
    });
    admin = adminClients(server.adminSocket);
  });

  after(async () => {
    for (const a of agents) await a.stop();
    await server?.stop();
    await imds?.close();
    await ec2?.close();
    for (const d of [dir, aws?.dir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  async function awsAgent(name: string, ready = true) {
    const file = path.join(dir, `${name}.yaml`);
    writeFileSync(file, stringify({ aws_iid: { endpoint: imds.url } }));
    const a = await startAgent(server, { args: ['--config', file], ready });
    agents.push(a);
    return a;
  }

  it('the node gets tag, security group and instance profile selectors', SLOW, async () => {
    await awsAgent('tagged');
    let selectors: string[] = [];
    await waitFor(async () => {
      const { agent } = await admin.agents
        .getAgent({ spiffeId: AGENT })
        .catch(() => ({ agent: undefined }));
      selectors = (agent?.selectors ?? []).map((s) => `${s.type}:${s.value}`);
      return selectors.length > 0;
    }, DEADLINE_MS);
    for (const want of [
      'aws_iid:account:111122223333',
      'aws_iid:tag:env:prod',
      'aws_iid:sg:id:sg-0123456789abcdef0',
      'aws_iid:sg:name:web',
      'aws_iid:instance_profile:arn:aws:iam::111122223333:instance-profile/payments-api',
    ])
      assert.ok(selectors.includes(want), `${want} in ${selectors.join(' ')}`);
    // The attestation's call, then the refresh's (every REFRESH_MS): all for this instance.
    assert.ok(ec2.requests.length >= 1);
    for (const r of ec2.requests) assert.equal(r.get('InstanceId.1'), 'i-1234567890abcdef0');
  });

  it(
    'a node that attests again with other tags is re-checked: the entry condition reading node.tags flips within 5 s',
    SLOW,
    async () => {
      const [agent] = agents;
      assert.ok(agent);
      const created = await admin.entries.batchCreateEntry({
        entries: [
          entry(GUARDED, AGENT, [`unix:uid:${UID}`], { condition: 'node.tags["env"] == "prod"' }),
          entry(PLAIN, AGENT, [`unix:uid:${UID}`]),
        ],
      });
      for (const r of created.results) assert.ok(r.entry?.id, r.status?.message);
      await waitFor(() => serves(agent.socketPath, GUARDED), DEADLINE_MS);
      const cli = (...args: string[]) =>
        runCli(args, { env: { TESSERA_ADMIN_SOCKET: server.adminSocket }, deadlineMs: 90_000 });
      /** The tag changes in EC2; the node is evicted and the agent attests again by itself. */
      const reattest = async (env: string) => {
        instance.tags = [['env', env]];
        const evicted = await cli('agent', 'evict', '--spiffe-id', AGENT);
        assert.equal(evicted.code, 0, evicted.stderr);
        await waitFor(async () => {
          const { agent: node } = await admin.agents
            .getAgent({ spiffeId: AGENT })
            .catch(() => ({ agent: undefined }));
          return (node?.selectors ?? []).some((s) => s.value === `tag:env:${env}`);
        }, DEADLINE_MS);
      };

      await reattest('dev');
      await within(5_000, async () => !(await serves(agent.socketPath, GUARDED)));
      // The entry without a condition is not affected.
      assert.equal(await serves(agent.socketPath, PLAIN), true);

      await reattest('prod');
      await within(5_000, () => serves(agent.socketPath, GUARDED));
    },
  );

  it(
    'a tag changed in EC2 is refreshed while the agent runs: the condition flips within the interval + 5 s, audited',
    SLOW,
    async () => {
      const [agent] = agents;
      assert.ok(agent);
      // The entries of the previous case; the node is back at env=prod.
      await waitFor(() => serves(agent.socketPath, GUARDED), DEADLINE_MS);
      const attests = async () =>
        (await admin.audit.listAuditRecords({ action: 'agent.attest', limit: 1000 })).records
          .length;
      const refreshes = async () =>
        (
          await admin.audit.listAuditRecords({ action: 'node.attributes_refreshed', limit: 1000 })
        ).records.filter((r) => r.target === AGENT);
      const attestsBefore = await attests();
      // The previous case's tag changes may have been refreshed too, before its evictions.
      const refreshesBefore = (await refreshes()).length;
      const bound = REFRESH_MS + 5_000;

      instance.tags = [['env', 'dev']];
      await within(bound, async () => !(await serves(agent.socketPath, GUARDED)));
      assert.equal(await serves(agent.socketPath, PLAIN), true);
      const { agent: node } = await admin.agents.getAgent({ spiffeId: AGENT });
      const values = (node?.selectors ?? []).map((s) => s.value);
      assert.ok(values.includes('tag:env:dev') && !values.includes('tag:env:prod'), `${values}`);
      // The document's selectors are kept.
      assert.ok(values.includes('instance_id:i-1234567890abcdef0'));
      const refreshed = (await refreshes()).slice(refreshesBefore);
      assert.equal(refreshed.length, 1, refreshed.map((r) => JSON.stringify(r.details)).join());
      assert.equal(refreshed[0]?.outcome, 'success');
      assert.deepEqual(refreshed[0]?.details, {
        attestor: 'aws_iid',
        changed: ['aws_iid:tag'],
        added: 1,
        removed: 1,
      });

      instance.tags = [['env', 'prod']];
      await within(bound, () => serves(agent.socketPath, GUARDED));
      // No re-attestation did it.
      assert.equal(await attests(), attestsBefore);
    },
  );

  it('an EC2 API error refuses the attestation, audited, no node recorded', SLOW, async () => {
    const doc = identityDocument({ instanceId: OTHER });
    evidence = { document: doc, pkcs7: signIid(doc, [aws]) };
    ec2.answer = {
      status: 403,
      body: ec2Error('UnauthorizedOperation', 'You are not authorized to perform this operation.'),
    };
    const agent = await awsAgent('refused', false);
    assert.notEqual(await agent.exited(), 0);
    const want = `aws_iid: the EC2 API (${ec2.url}) refused DescribeInstances: UnauthorizedOperation (You are not authorized to perform this operation.) (HTTP 403)`;
    assert.ok(agent.output().includes(want), agent.output());
    const { records } = await admin.audit.listAuditRecords({ action: 'agent.attest', limit: 50 });
    assert.ok(
      records.some(
        (r) => r.outcome === 'denied' && (r.details as { reason?: string })?.reason === want,
      ),
    );
    const id = AGENT.replace('i-1234567890abcdef0', OTHER);
    await assert.rejects(admin.agents.getAgent({ spiffeId: id }));
    // The running node's refresh meets the same error: audited, its record kept as it is.
    const failedRefresh = async () =>
      (
        await admin.audit.listAuditRecords({ action: 'node.attributes_refresh_failed', limit: 50 })
      ).records.find((r) => r.target === AGENT);
    await within(REFRESH_MS + 5_000, async () => (await failedRefresh()) !== undefined);
    const failed = await failedRefresh();
    assert.equal(failed?.outcome, 'error');
    assert.match(String((failed?.details as { reason?: string })?.reason), /UnauthorizedOperation/);
    const { agent: kept } = await admin.agents.getAgent({ spiffeId: AGENT });
    assert.ok(kept?.selectors.some((s) => s.value === 'tag:env:prod'));
    assert.equal(kept?.banned, false);
    // The server's credentials are never in its log or audit.
    assert.doesNotMatch(server.output(), /wJalrXUtnFEMI|FQoGZXIvYXdz/);
  });
});
