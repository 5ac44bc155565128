// Black-box: the cloud node attestors from agent start to a workload SVID, with a real server, real
// agents and the admin API, against local stand-ins of the cloud metadata services (AWS IMDSv2,
// the GCE metadata server, Azure IMDS) whose evidence is signed by test keys the server is
// configured to trust. Refused evidence (forged, expired, replayed, another account, project,
// tenant or audience, an extra PKCS#7 signer) is refused with the failed check named, audited,
// and leaves no node behind.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { adminClients, entry, type AdminClients } from './helpers/admin.ts';
import { startAgent, type AgentProcess } from './helpers/agent-process.ts';
import { type AwsSigner, identityDocument, makeAwsSigner, signIid } from './helpers/aws-iid.ts';
import { type MetadataStandIn, awsImds, azureImds, gceMetadata } from './helpers/cloud-metadata.ts';
import {
  AZURE_TENANT,
  type JwksServer,
  type TokenSigner,
  azureClaims,
  gceClaims,
  serveJwks,
  signToken,
  tokenSigner,
} from './helpers/cloud-tokens.ts';
import { waitFor } from './helpers/ports.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';
import { bundlePem, StandInAgent } from './helpers/stand-in-agent.ts';
import { fetchX509, workloadClient } from './helpers/workload-grpc.ts';

const UID = process.getuid?.() ?? 0;
const DEADLINE_MS = 60_000;
const SLOW = { timeout: 5 * DEADLINE_MS };
const GCP_AUD = 'tessera-gcp-node-attestor';
const AZURE_RESOURCE = 'https://management.azure.com/';
const AWS_AGENT =
  'spiffe://example.org/spire/agent/aws_iid/111122223333/us-west-2/i-1234567890abcdef0';
const GCP_AGENT = 'spiffe://example.org/spire/agent/gcp_iit/my-project/4470531224346736429';
const AZURE_AGENT = `spiffe://example.org/spire/agent/azure_msi/${AZURE_TENANT}/9c7b1e3d-4f5a-4b6c-8d7e-0f1a2b3c4d5e`;

describe('cloud node attestors black-box', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-cloud-'));
  let aws: AwsSigner;
  let intruder: AwsSigner;
  let google: TokenSigner;
  let entra: TokenSigner;
  let jwks: JwksServer;
  let imds: MetadataStandIn;
  let gce: MetadataStandIn;
  let azure: MetadataStandIn;
  let server: ServerProcess;
  let admin: AdminClients;
  const agents: AgentProcess[] = [];
  const awsDoc = identityDocument();
  let awsPkcs7 = '';

  before(async () => {
    aws = makeAwsSigner('aws');
    intruder = makeAwsSigner('intruder');
    google = tokenSigner();
    entra = tokenSigner();
    jwks = await serveJwks([google, entra]);
    awsPkcs7 = signIid(awsDoc, [aws]);
    imds = await awsImds(() => ({ document: awsDoc, pkcs7: awsPkcs7 }));
    const gceToken = await signToken(google, gceClaims(GCP_AUD));
    gce = await gceMetadata((aud) => (aud === GCP_AUD ? gceToken : ''));
    const azureToken = await signToken(entra, azureClaims(AZURE_RESOURCE));
    azure = await azureImds(() => azureToken);
    server = await startServer({
      config: {
        node_attestors: {
          join_token: {},
          aws_iid: { account_ids: ['111122223333'], ca_certificates_file: aws.certFile },
          gcp_iit: { project_ids: ['my-project'], jwks_url: jwks.url },
          azure_msi: { tenants: [{ tenant_id: AZURE_TENANT }], jwks_url: jwks.url },
        },
      },
    });
    admin = adminClients(server.adminSocket);
  });

  after(async () => {
    for (const a of agents) await a.stop();
    await server?.stop();
    for (const s of [imds, gce, azure, jwks]) await s?.close();
    for (const d of [dir, aws?.dir, intruder?.dir])
      if (d) rmSync(d, { recursive: true, force: true });
  });

  /** Starts an agent whose config file names only the attestor; everything else is flags. */
  async function cloudAgent(name: string, attestor: Record<string, unknown>, ready = true) {
    const file = path.join(dir, `${name}-${agents.length}.yaml`);
    writeFileSync(file, stringify(attestor));
    const a = await startAgent(server, { args: ['--config', file], ready });
    agents.push(a);
    return a;
  }

  async function workloadSvid(agent: AgentProcess, agentId: string, name: string): Promise<string> {
    await admin.entries.batchCreateEntry({
      entries: [entry(`spiffe://example.org/${name}`, agentId, [`unix:uid:${UID}`])],
    });
    const client = workloadClient(agent.socketPath);
    try {
      const deadline = Date.now() + DEADLINE_MS;
      for (;;) {
        const stream = fetchX509(client);
        const first = await stream.next(5000).catch(() => null);
        stream.cancel();
        const id = first?.svids.find((s) => s.spiffe_id.endsWith(`/${name}`))?.spiffe_id;
        if (id) return id;
        if (Date.now() > deadline) throw new Error(`no SVID for ${name}: ${agent.output()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      client.close();
    }
  }

  async function nodeSelectors(id: string): Promise<string[]> {
    const { agent } = await admin.agents.getAgent({ spiffeId: id });
    return (agent?.selectors ?? []).map((s) => `${s.type}:${s.value}`);
  }

  it('aws_iid: the agent attests through IMDSv2 and serves a workload SVID', SLOW, async () => {
    const agent = await cloudAgent('aws', { aws_iid: { endpoint: imds.url } });
    assert.equal(await workloadSvid(agent, AWS_AGENT, 'ec2-web'), 'spiffe://example.org/ec2-web');
    assert.deepEqual((await nodeSelectors(AWS_AGENT)).sort(), [
      'aws_iid:account:111122223333',
      'aws_iid:az:us-west-2b',
      'aws_iid:image_id:ami-5fb8c835',
      'aws_iid:instance_id:i-1234567890abcdef0',
      'aws_iid:instance_type:t2.micro',
      'aws_iid:region:us-west-2',
    ]);
    assert.ok(imds.requests.includes('PUT /latest/api/token'));
  });

  it(
    'aws_iid: a second agent with the same instance is refused (trust on first use) and audited',
    SLOW,
    async () => {
      await waitFor(async () => (await nodeSelectors(AWS_AGENT)).length > 0, DEADLINE_MS);
      const second = await cloudAgent('aws-replay', { aws_iid: { endpoint: imds.url } }, false);
      const code = await second.exited();
      assert.notEqual(code, 0);
      assert.match(second.output(), /already attested \(trust on first use\)/);
      const denied = await deniedReasons();
      assert.ok(
        denied.some((r) =>
          r.includes(`agent ${AWS_AGENT} is already attested (trust on first use)`),
        ),
        denied.join('\n'),
      );
    },
  );

  it(
    'gcp_iit: the agent attests with the instance identity token and serves a workload SVID',
    SLOW,
    async () => {
      const agent = await cloudAgent('gcp', { gcp_iit: { endpoint: gce.url } });
      assert.equal(await workloadSvid(agent, GCP_AGENT, 'gce-web'), 'spiffe://example.org/gce-web');
      assert.ok((await nodeSelectors(GCP_AGENT)).includes('gcp_iit:project:my-project'));
    },
  );

  it(
    'azure_msi: the agent attests with a managed-identity token and serves a workload SVID',
    SLOW,
    async () => {
      const agent = await cloudAgent('azure', { azure_msi: { endpoint: azure.url } });
      assert.equal(
        await workloadSvid(agent, AZURE_AGENT, 'azure-web'),
        'spiffe://example.org/azure-web',
      );
      assert.ok((await nodeSelectors(AZURE_AGENT)).includes('azure_msi:vm_name:vm-1'));
    },
  );

  async function deniedReasons(): Promise<string[]> {
    const { records } = await admin.audit.listAuditRecords({ action: 'agent.attest', limit: 200 });
    return records
      .filter((r) => r.outcome === 'denied')
      .map((r) => String((r.details as { reason?: unknown } | undefined)?.reason ?? ''));
  }

  it(
    'refuses bad evidence naming the failed check, audits it and records no node',
    SLOW,
    async () => {
      const standIn = new StandInAgent({
        address: server.apiAddr,
        trustDomain: 'example.org',
        trustBundlePem: await bundlePem(server.adminSocket),
      });
      const aws2 = identityDocument({ instanceId: 'i-0abcdef1234567890' });
      const forged = Buffer.from(signIid(aws2, [aws]), 'base64');
      forged.writeUInt8((forged.at(-1) ?? 0) ^ 1, forged.length - 1);
      const other = identityDocument({
        accountId: '444455556666',
        instanceId: 'i-0abcdef1234567891',
      });
      const awsPayload = (document: string, pkcs7: string) =>
        Buffer.from(JSON.stringify({ document, pkcs7 }));
      const cases: [string, Uint8Array, string][] = [
        [
          'aws_iid',
          awsPayload(aws2, forged.toString('base64')),
          'aws_iid: PKCS#7 signature does not verify with the AWS certificate',
        ],
        [
          'aws_iid',
          awsPayload(aws2, signIid(aws2, [aws, intruder])),
          'aws_iid: PKCS#7 must have exactly one signer (it has 2)',
        ],
        [
          'aws_iid',
          awsPayload(aws2, signIid(aws2, [intruder])),
          'aws_iid: the PKCS#7 signer is not a trusted AWS certificate',
        ],
        [
          'aws_iid',
          awsPayload(other, signIid(other, [aws])),
          'aws_iid: account 444455556666 is not allowed',
        ],
        [
          'gcp_iit',
          Buffer.from(
            await signToken(google, gceClaims(GCP_AUD, { instanceId: '1' }), {
              iatOffsetSeconds: -7200,
            }),
          ),
          'gcp_iit: token has expired',
        ],
        [
          'gcp_iit',
          Buffer.from(await signToken(google, gceClaims('another-audience', { instanceId: '2' }))),
          'gcp_iit: token audience is not "tessera-gcp-node-attestor"',
        ],
        [
          'gcp_iit',
          Buffer.from(
            await signToken(
              google,
              gceClaims(GCP_AUD, { project: 'their-project', instanceId: '3' }),
            ),
          ),
          'gcp_iit: project their-project is not allowed',
        ],
        [
          'gcp_iit',
          Buffer.from(
            await signToken(tokenSigner(google.kid), gceClaims(GCP_AUD, { instanceId: '4' })),
          ),
          'gcp_iit: token signature does not verify',
        ],
        [
          'azure_msi',
          Buffer.from(
            await signToken(
              entra,
              azureClaims(AZURE_RESOURCE, { tenant: '11111111-2222-3333-4444-555555555555' }),
            ),
          ),
          'azure_msi: tenant "11111111-2222-3333-4444-555555555555" is not allowed',
        ],
        [
          'azure_msi',
          Buffer.from(
            await signToken(
              entra,
              azureClaims('https://vault.azure.net', {
                principal: '00000000-0000-0000-0000-000000000001',
              }),
            ),
          ),
          'azure_msi: token audience is not "https://management.azure.com/"',
        ],
        // The first agent's own evidence, replayed from elsewhere: trust on first use.
        [
          'gcp_iit',
          Buffer.from(await signToken(google, gceClaims(GCP_AUD))),
          `gcp_iit: agent ${GCP_AGENT} is already attested (trust on first use)`,
        ],
      ];
      const nodesBefore = (await admin.agents.listAgents({})).agents.length;
      for (const [type, payload, message] of cases) {
        await assert.rejects(
          standIn.attest(type, payload),
          (e: Error & { code?: number; rawMessage?: string }) => {
            assert.equal(e.code, 7, `${message}: PermissionDenied`); // Connect code permission_denied
            assert.ok(
              (e.rawMessage ?? e.message).startsWith(message),
              `${e.message} vs ${message}`,
            );
            return true;
          },
        );
      }
      const reasons = await deniedReasons();
      for (const [, , message] of cases)
        assert.ok(
          reasons.some((r) => r.startsWith(message)),
          `audited: ${message}`,
        );
      assert.equal(
        (await admin.agents.listAgents({})).agents.length,
        nodesBefore,
        'no node recorded',
      );
    },
  );

  it('lets an evicted instance attest again', SLOW, async () => {
    const evictedAt = Date.now();
    await admin.agents.evictAgent({ spiffeId: GCP_AGENT });
    const standIn = new StandInAgent({
      address: server.apiAddr,
      trustDomain: 'example.org',
      trustBundlePem: await bundlePem(server.adminSocket),
    });
    // The running agent that held the node re-attests by itself once evicted and may come first:
    // either way the instance is admitted again, as a new node.
    await standIn
      .attest('gcp_iit', Buffer.from(await signToken(google, gceClaims(GCP_AUD))))
      .catch(() => null);
    await waitFor(async () => {
      const r = await admin.agents.getAgent({ spiffeId: GCP_AGENT }).catch(() => null);
      return r?.agent !== undefined && Number(r.agent.createdAt) * 1000 >= evictedAt - 1000;
    }, DEADLINE_MS);
  });
});
