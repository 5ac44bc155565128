// Black box: `token generate --spiffe-id ID` as SPIRE means it. The token's agent keeps its
// join_token ID (so the server knows it for an agent), ID becomes a node alias of that agent,
// and an entry whose parent is ID reaches the agent's workloads over the Workload API.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startAgent, type AgentProcess } from './helpers/agent-process.ts';
import { runCli } from './helpers/cli-process.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';
import { fetchX509, workloadClient, type X509Response } from './helpers/workload-grpc.ts';

const UID = process.getuid?.() ?? 0;
const ALIAS = 'spiffe://example.org/nodes/web-1';

describe('token generate --spiffe-id: a node alias for the token agent', () => {
  let server: ServerProcess;
  let agent: AgentProcess | undefined;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await agent?.stop();
    await server?.stop();
  });

  it('an entry parented by the alias reaches the agent workloads', async () => {
    const admin = (...args: string[]) => runCli([...args, '--socket', server.adminSocket]);
    const gen = await admin('token', 'generate', '--spiffe-id', ALIAS);
    assert.equal(gen.code, 0, gen.stderr);
    const token = gen.stdout.trim();
    const agentId = /agent SPIFFE ID: (\S+)/.exec(gen.stderr)?.[1] ?? '';
    assert.match(agentId, /^spiffe:\/\/example\.org\/spire\/agent\/join_token\/[\w-]+$/);
    assert.ok(gen.stderr.includes(`node alias: ${ALIAS} (an entry with parent ${agentId})`));
    const created = await admin(
      'entry',
      'create',
      '--spiffe-id',
      'spiffe://example.org/web',
      '--parent-id',
      ALIAS,
      '--selector',
      `unix:uid:${UID}`,
    );
    assert.equal(created.code, 0, created.stderr);

    agent = await startAgent(server, { joinToken: token });
    const client = workloadClient(agent.socketPath);
    // The entry reaches the agent asynchronously: reopen the stream until the identity arrives.
    let got: X509Response | null = null;
    const deadline = Date.now() + 60_000;
    while (!got && Date.now() < deadline) {
      const stream = fetchX509(client);
      try {
        got = await stream.next(2_000);
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      } finally {
        stream.cancel();
      }
    }
    client.close();
    assert.ok(got, `no SVID within 60 s\n${agent.output()}`);
    assert.deepEqual(
      got.svids.map((s) => s.spiffe_id),
      ['spiffe://example.org/web'],
    );
    assert.doesNotMatch(agent.output(), /may not call|refused/);
    const shown = await admin('agent', 'show', '--spiffe-id', agentId);
    assert.equal(shown.code, 0, shown.stderr);
  });
});
