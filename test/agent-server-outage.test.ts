// Black-box: an agent restarted from its data directory alone, and an agent catching up at once
// when its server comes back after an outage. Real server and agent processes; every wait polls a
// condition with a bounded deadline (the machine is shared and may be slow).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { adminClients, type AdminClients } from './helpers/admin.ts';
import type { AgentProcess } from './helpers/agent-process.ts';
import { waitFor } from './helpers/ports.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';
import {
  CHAINED,
  DEADLINE_MS,
  entriesForMe,
  serves,
  startServingAgent,
} from './helpers/serving-agent.ts';

describe('an agent restarted from its data directory alone', () => {
  let server: ServerProcess;
  let admin: AdminClients;
  let agent: AgentProcess | undefined;

  before(async () => {
    server = await startServer();
    admin = adminClients(server.adminSocket);
  });

  after(async () => {
    await agent?.stop();
    await server?.stop();
  });

  it(
    'started with --join-token and --trust-bundle, restarted with only --server, --trust-domain, --data-dir and the socket: entries sync, workloads get SVIDs',
    CHAINED,
    async () => {
      const t = await startServingAgent(server, admin, ['spiffe://example.org/before']);
      agent = t.agent;
      assert.equal(await agent.stop(), 0);
      // The server's bundle is in the data dir, as docs/configuration.md says.
      const saved = path.join(agent.dataDir, 'bundle.pem');
      assert.ok(existsSync(saved), 'bundle.pem in the data dir');
      assert.match(readFileSync(saved, 'utf8'), /BEGIN CERTIFICATE/);

      const from = agent.output().length;
      await agent.restart(); // no --join-token, no --trust-bundle
      assert.deepEqual(
        agent.proc.spawnargs.filter((a) => a === '--trust-bundle' || a === '--join-token'),
        [],
      );
      // An entry created after the restart arrives only through a working entry sync.
      await entriesForMe(admin, t.agentSpiffeId, ['spiffe://example.org/after']);
      await waitFor(() => serves(agent!.socketPath, 'spiffe://example.org/after'), DEADLINE_MS);
      assert.ok(await serves(agent.socketPath, 'spiffe://example.org/before'));
      const out = agent.output().slice(from);
      assert.doesNotMatch(out, /self-signed certificate/);
      assert.doesNotMatch(out, /entry sync interrupted/);
      assert.match(out, /reusing the persisted agent SVID/);
    },
  );
});

describe('the agent catches up as soon as the server is back', () => {
  let server: ServerProcess;
  let admin: AdminClients;
  let agent: AgentProcess | undefined;

  before(async () => {
    server = await startServer();
    admin = adminClients(server.adminSocket);
  });

  after(async () => {
    await agent?.stop();
    await server?.stop();
  });

  it(
    'after an outage long enough to push the sync backoff past 8 s, an entry created once the server is ready reaches the workload long before that backoff',
    CHAINED,
    async () => {
      // A large cap, so the backoff alone would keep the stream away for a long time.
      const configFile = path.join(server.dataDir, 'agent.yaml');
      writeFileSync(configFile, 'max_backoff: 10m\n');
      const t = await startServingAgent(server, admin, ['spiffe://example.org/steady'], {
        args: ['--config', configFile],
      });
      agent = t.agent;

      const from = agent.output().length;
      await server.stop();
      // Wait until the sync has planned a retry at least 8 s away (it logs each plan).
      let planned = 0;
      let plannedAt = 0;
      await waitFor(() => {
        const plans = [
          ...agent!
            .output()
            .slice(from)
            .matchAll(/"retryInMs":(\d+)/g),
        ];
        const last = Number(plans.at(-1)?.[1] ?? 0);
        if (last >= 8000) {
          planned = last;
          plannedAt = Date.now();
        }
        return last >= 8000;
      }, 2 * DEADLINE_MS);

      await server.restart();
      const readyAt = Date.now();
      await entriesForMe(admin, t.agentSpiffeId, ['spiffe://example.org/back']);
      // Well before the planned retry: only the server-back signal can bring it this soon.
      const deadline = Math.min(readyAt + 8000, plannedAt + planned - 1000) - Date.now();
      assert.ok(deadline > 0, `the restart took too long (${Date.now() - plannedAt} ms)`);
      await waitFor(() => serves(agent!.socketPath, 'spiffe://example.org/back'), deadline).catch(
        (e: unknown) => {
          throw new Error(`${(e as Error).message}; agent output:\n${agent!.output().slice(from)}`);
        },
      );
      assert.match(
        agent.output().slice(from),
        /the server answers again; entry sync reconnects now/,
      );
    },
  );
});
