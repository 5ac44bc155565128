// Black-box: an agent given several server addresses (two servers on one PostgreSQL) keeps
// serving when the server it uses is killed: it moves to the other without attesting again, and
// entries and SVIDs keep coming from there.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkloadClient } from '../src/client/workload/index.ts';
import { adminClients, entry } from './helpers/admin.ts';
import { startAgent, type AgentProcess } from './helpers/agent-process.ts';
import { waitFor } from './helpers/ports.ts';
import { createTempDatabase, type TempDatabase } from './helpers/postgres.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';

const UID = process.getuid?.() ?? 0;
const DEADLINE_MS = 60_000;

async function serves(socketPath: string, spiffeId: string): Promise<boolean> {
  const c = new WorkloadClient({ address: `unix://${socketPath}` });
  try {
    const ctx = await c.fetchX509Context({ timeoutMs: 5000 });
    return ctx.svids.some((s) => s.spiffeId === spiffeId);
  } catch {
    return false;
  } finally {
    c.close();
  }
}

async function jwtFor(socketPath: string, audience: string): Promise<boolean> {
  const c = new WorkloadClient({ address: `unix://${socketPath}` });
  try {
    const svids = await c.fetchJWTSVIDs({ audience }, { timeoutMs: 5000 });
    return svids.length > 0;
  } catch {
    return false;
  } finally {
    c.close();
  }
}

describe('an agent with two server addresses', () => {
  let db: TempDatabase;
  let a: ServerProcess;
  let b: ServerProcess;
  let agent: AgentProcess | undefined;

  before(async () => {
    db = await createTempDatabase();
    a = await startServer({ datastoreUrl: db.url });
    b = await startServer({ datastoreUrl: db.url });
  });

  after(async () => {
    await agent?.stop();
    await a?.stop();
    await b?.stop();
    await db?.drop();
  });

  it(
    'fails over when the server it uses is killed: no new attestation, new entries and SVIDs from the other',
    { timeout: 5 * DEADLINE_MS },
    async () => {
      const admin = adminClients(b.adminSocket);
      const t = await admin.agents.createJoinToken({});
      await admin.entries.batchCreateEntry({
        entries: [entry('spiffe://example.org/one', t.agentSpiffeId, [`unix:uid:${UID}`])],
      });
      // --server A,B (the helper's own --server comes first; the later flag wins).
      agent = await startAgent(a, {
        joinToken: t.token,
        args: ['--server', `${a.apiAddr},${b.apiAddr}`],
      });
      await waitFor(() => serves(agent!.socketPath, 'spiffe://example.org/one'), DEADLINE_MS);
      assert.ok(await jwtFor(agent.socketPath, 'before'), 'a JWT-SVID from server A');
      const from = agent.output().length;

      await a.kill(); // kill -9
      await admin.entries.batchCreateEntry({
        entries: [entry('spiffe://example.org/two', t.agentSpiffeId, [`unix:uid:${UID}`])],
      });
      await waitFor(() => serves(agent!.socketPath, 'spiffe://example.org/two'), DEADLINE_MS).catch(
        (e: unknown) => {
          throw new Error(`${(e as Error).message}; agent output:\n${agent!.output().slice(from)}`);
        },
      );
      await waitFor(() => jwtFor(agent!.socketPath, 'after'), DEADLINE_MS);
      assert.ok(await serves(agent.socketPath, 'spiffe://example.org/one'));
      const out = agent.output().slice(from);
      assert.match(out, /using the next server address/);
      assert.doesNotMatch(out, /attesting to the server/);
      assert.equal(agent.proc.exitCode, null, 'the agent kept running');
      const nodes = await admin.agents.listAgents({});
      assert.equal(nodes.agents.length, 1, 'one attested node: the agent did not attest again');
    },
  );
});
