// Black-box: an agent given several server addresses (two servers on one PostgreSQL) keeps
// serving when the server it uses is killed: it moves to the other without attesting again, and
// entries and SVIDs keep coming from there.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminClients } from './helpers/admin.ts';
import type { AgentProcess } from './helpers/agent-process.ts';
import { waitFor } from './helpers/ports.ts';
import { createTempDatabase, type TempDatabase } from './helpers/postgres.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';
import {
  DEADLINE_MS,
  entriesForMe,
  serves,
  servesJwt,
  startServingAgent,
} from './helpers/serving-agent.ts';

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
      // --server A,B (the helper's own --server comes first; the later flag wins).
      const t = await startServingAgent(a, admin, ['spiffe://example.org/one'], {
        args: ['--server', `${a.apiAddr},${b.apiAddr}`],
      });
      agent = t.agent;
      assert.ok(await servesJwt(agent.socketPath, 'before'), 'a JWT-SVID from server A');
      const from = agent.output().length;

      await a.kill(); // kill -9
      await entriesForMe(admin, t.agentSpiffeId, ['spiffe://example.org/two']);
      await waitFor(() => serves(agent!.socketPath, 'spiffe://example.org/two'), DEADLINE_MS).catch(
        (e: unknown) => {
          throw new Error(`${(e as Error).message}; agent output:\n${agent!.output().slice(from)}`);
        },
      );
      await waitFor(() => servesJwt(agent!.socketPath, 'after'), DEADLINE_MS);
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
