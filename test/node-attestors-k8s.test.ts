// Black box: k8s_psat from agent start to a workload SVID. A stand-in cluster signs projected
// service-account tokens shaped exactly as Kubernetes issues them; the server trusts its keys
// through a JWKS file (cluster "prod") and through OIDC discovery served by a stand-in API server
// (cluster "lab"). Refusals — wrong audience, expired, service account not allowed, forged
// signature, a second node with an attested node uid (trust on first use) — end the agent's
// start with the failed check named, and are audited.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { adminClients, entry, type AdminClients } from './helpers/admin.ts';
import { startAgent, type AgentProcess } from './helpers/agent-process.ts';
import {
  type PodBinding,
  type StandInApiServer,
  type StandInCluster,
  standInCluster,
  startStandInApiServer,
} from './helpers/k8s-cluster.ts';
import { waitFor } from './helpers/ports.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';
import { CHAINED, DEADLINE_MS, UID, serves } from './helpers/serving-agent.ts';

const TD = 'example.org';
const SERVER_ID = `spiffe://${TD}/spire/server`;

describe('k8s_psat node attestation (black box)', () => {
  let cluster: StandInCluster;
  let api: StandInApiServer;
  let server: ServerProcess;
  let admin: AdminClients;
  const agents: AgentProcess[] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-psat-bb-'));

  before(async () => {
    cluster = standInCluster();
    api = await startStandInApiServer(cluster);
    const allow = ['tessera:tessera-agent'];
    server = await startServer({
      trustDomain: TD,
      config: {
        node_attestors: {
          k8s_psat: {
            clusters: {
              prod: {
                service_account_allow_list: allow,
                issuer: cluster.issuer,
                jwks_file: cluster.jwksFile,
              },
              lab: {
                service_account_allow_list: allow,
                audience: ['tessera-lab'],
                issuer: cluster.issuer,
                oidc_discovery_url: `${api.url}/.well-known/openid-configuration`,
                ca_file: api.caFile,
              },
            },
          },
        },
      },
    });
    admin = adminClients(server.adminSocket);
  });

  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await server?.stop();
    await api?.close();
  });

  /** An agent config file attesting with k8s_psat; the token is written where it reads it. */
  async function agentWith(clusterName: string, binding: PodBinding, ready = true) {
    const tokenPath = path.join(mkdtempSync(path.join(dir, 'pod-')), 'tessera-agent');
    writeFileSync(tokenPath, await cluster.token(binding));
    const configFile = path.join(path.dirname(tokenPath), 'agent.yaml');
    writeFileSync(
      configFile,
      stringify({ k8s_psat: { cluster: clusterName, token_path: tokenPath } }),
    );
    const agent = await startAgent(server, { args: ['--config', configFile], ready });
    agents.push(agent);
    return agent;
  }

  async function deniedAudits(): Promise<string[]> {
    const records = (await admin.audit.listAuditRecords({ action: 'agent.attest', limit: 100 }))
      .records;
    return records.filter((r) => r.outcome === 'denied').map((r) => JSON.stringify(r.details));
  }

  it(
    'attests with a JWKS file and serves a workload through a k8s_psat node alias',
    CHAINED,
    async () => {
      const nodeUid = randomUUID();
      const alias = `spiffe://${TD}/k8s/prod`;
      await admin.entries.batchCreateEntry({
        entries: [
          entry(alias, SERVER_ID, ['k8s_psat:cluster:prod', 'k8s_psat:agent_sa:tessera-agent']),
          entry(`spiffe://${TD}/k8s/web`, alias, [`unix:uid:${UID}`]),
        ],
      });
      const agent = await agentWith('prod', { nodeUid, nodeName: 'worker-1' });
      const agentId = `spiffe://${TD}/spire/agent/k8s_psat/prod/${nodeUid}`;
      assert.match(agent.output(), new RegExp(`tessera agent ready: ${agentId} `));
      const node = (await admin.agents.getAgent({ spiffeId: agentId })).agent;
      assert.equal(node?.attestationType, 'k8s_psat');
      const selectors = node?.selectors.map((s) => `${s.type}:${s.value}`) ?? [];
      for (const s of [
        'cluster:prod',
        'agent_ns:tessera',
        'agent_node_name:worker-1',
        `agent_node_uid:${nodeUid}`,
      ])
        assert.ok(selectors.includes(`k8s_psat:${s}`), `has k8s_psat:${s}: ${selectors.join(' ')}`);
      await waitFor(() => serves(agent.socketPath, `spiffe://${TD}/k8s/web`), DEADLINE_MS);
    },
  );

  it(
    'attests through OIDC discovery with the cluster audience it configures',
    CHAINED,
    async () => {
      const nodeUid = randomUUID();
      const agent = await agentWith('lab', { nodeUid, audience: ['tessera-lab'] });
      assert.match(
        agent.output(),
        new RegExp(`tessera agent ready: spiffe://${TD}/spire/agent/k8s_psat/lab/${nodeUid} `),
      );
      assert.ok((api.hits.get('/openid/v1/jwks') ?? 0) >= 1);
    },
  );

  it(
    'refuses bad tokens and a second node with an attested node uid, naming the check',
    CHAINED,
    async () => {
      const taken = randomUUID();
      await agentWith('prod', { nodeUid: taken });
      const cases: [PodBinding, string][] = [
        [
          { audience: ['https://kubernetes.default.svc'] },
          'k8s_psat: token audience does not include "tessera"',
        ],
        [{ expiresIn: -600 }, 'k8s_psat: token has expired'],
        [
          { namespace: 'default', serviceAccount: 'web' },
          'k8s_psat: service account "default:web" is not allowed in cluster "prod"',
        ],
        [
          { forge: true },
          'k8s_psat: token signature does not verify with the keys of cluster "prod"',
        ],
        [
          { nodeUid: taken, podName: 'tessera-agent-second' },
          `k8s_psat: agent spiffe://${TD}/spire/agent/k8s_psat/prod/${taken} is already attested (trust on first use): evict it to attest again, or allow re-attestation`,
        ],
      ];
      const started = await Promise.all(cases.map(([b]) => agentWith('prod', b, false)));
      const codes = await Promise.all(started.map((a) => a.exited()));
      for (const [i, [, message]] of cases.entries()) {
        assert.notEqual(codes[i], 0, `case ${i} exits non-zero`);
        assert.ok(started[i]!.output().includes(message), `case ${i}: ${started[i]!.output()}`);
      }
      const audited = await deniedAudits();
      for (const [, message] of cases)
        assert.ok(
          audited.some((d) => d.includes(JSON.stringify(message).slice(1, -1))),
          `audited: ${message}`,
        );
      // Nothing was recorded for the refused nodes; the first holder of the node uid is intact.
      const nodes = (await admin.agents.listAgents({ byAttestationType: 'k8s_psat' })).agents;
      assert.equal(nodes.filter((n) => n.spiffeId.endsWith(`/${taken}`)).length, 1);
      assert.ok(
        nodes
          .find((n) => n.spiffeId.endsWith(`/${taken}`))!
          .selectors.every((s) => s.value !== 'agent_pod_name:tessera-agent-second'),
      );
    },
  );
  it('lets the node uid attest again once the node is evicted', CHAINED, async () => {
    const nodeUid = randomUUID();
    const first = await agentWith('prod', { nodeUid });
    const agentId = `spiffe://${TD}/spire/agent/k8s_psat/prod/${nodeUid}`;
    assert.equal(await first.stop(), 0);
    await admin.agents.evictAgent({ spiffeId: agentId });
    const second = await agentWith('prod', { nodeUid, podName: 'tessera-agent-new' });
    assert.match(second.output(), new RegExp(`tessera agent ready: ${agentId} `));
    const node = (await admin.agents.getAgent({ spiffeId: agentId })).agent;
    assert.ok(node?.selectors.some((s) => s.value === 'agent_pod_name:tessera-agent-new'));
  });
});
