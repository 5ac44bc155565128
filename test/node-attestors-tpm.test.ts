// Black box: tpm node attestation with a software TPM (swtpm) driven by the agent through
// tpm2-tools, from agent start to a workload SVID through a node alias on the EK certificate's
// fields. A TPM whose EK certificate comes from another manufacturer CA is refused with the
// check named, audited, and not recorded. Skips (saying why) only without swtpm/tpm2-tools.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { adminClients, entry, type AdminClients } from './helpers/admin.ts';
import { startAgent, type AgentProcess } from './helpers/agent-process.ts';
import { waitFor } from './helpers/ports.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';
import { CHAINED, DEADLINE_MS, UID, serves } from './helpers/serving-agent.ts';
import { type Swtpm, startSwtpm, swtpmMissing } from './helpers/swtpm.ts';

const TD = 'example.org';

describe('tpm node attestation (black box)', { skip: swtpmMissing() ?? false }, () => {
  let tpm: Swtpm;
  let foreign: Swtpm;
  let server: ServerProcess;
  let admin: AdminClients;
  const agents: AgentProcess[] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-tpm-bb-'));

  before(async () => {
    [tpm, foreign] = await Promise.all([startSwtpm(), startSwtpm()]);
    server = await startServer({
      trustDomain: TD,
      config: { node_attestors: { tpm: { ek_ca_bundle_file: tpm.caBundleFile } } },
    });
    admin = adminClients(server.adminSocket);
  });

  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await server?.stop();
    await tpm?.stop();
    await foreign?.stop();
  });

  async function agentOn(t: Swtpm, ready = true): Promise<AgentProcess> {
    const configFile = path.join(mkdtempSync(path.join(dir, 'node-')), 'agent.yaml');
    writeFileSync(configFile, stringify({ tpm: { tcti: t.tcti } }));
    const agent = await startAgent(server, { args: ['--config', configFile], ready });
    agents.push(agent);
    return agent;
  }

  it('attests with the TPM and serves a workload through a tpm node alias', CHAINED, async () => {
    const alias = `spiffe://${TD}/tpm/swtpm-nodes`;
    await admin.entries.batchCreateEntry({
      entries: [
        entry(alias, `spiffe://${TD}/spire/server`, ['tpm:ek_cert:model:swtpm']),
        entry(`spiffe://${TD}/tpm/web`, alias, [`unix:uid:${UID}`]),
      ],
    });
    const agent = await agentOn(tpm);
    const id = /tessera agent ready: (spiffe:\/\/\S+) /.exec(agent.output())?.[1] ?? '';
    assert.match(id, new RegExp(`^spiffe://${TD}/spire/agent/tpm/[0-9a-f]{64}$`));
    const node = (await admin.agents.getAgent({ spiffeId: id })).agent;
    const hash = id.slice(id.lastIndexOf('/') + 1);
    const selectors = node?.selectors.map((s) => `${s.type}:${s.value}`) ?? [];
    assert.ok(selectors.includes(`tpm:pub_hash:${hash}`), selectors.join(' '));
    assert.equal(node?.canReattest, true);
    await waitFor(() => serves(agent.socketPath, `spiffe://${TD}/tpm/web`), DEADLINE_MS);
  });

  it('refuses a TPM whose EK certificate is from another manufacturer CA', CHAINED, async () => {
    const agent = await agentOn(foreign, false);
    const code = await agent.exited();
    const message = 'tpm: the EK certificate does not chain to a manufacturer CA';
    assert.notEqual(code, 0);
    assert.ok(agent.output().includes(message), agent.output());
    const denied = (
      await admin.audit.listAuditRecords({ action: 'agent.attest', limit: 100 })
    ).records.filter((r) => r.outcome === 'denied');
    assert.ok(denied.some((r) => JSON.stringify(r.details).includes(message)));
    const nodes = (await admin.agents.listAgents({ byAttestationType: 'tpm' })).agents;
    assert.equal(nodes.length, 1, 'only the genuine TPM is recorded');
  });
});
