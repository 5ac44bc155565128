// Black-box: the agent's life as an operator sees it, with real server and agent processes.
// Refused SVIDs and new join tokens, the Workload API socket file across starts and stops, a
// listener that cannot be bound, and SIGTERM at every stage. Every wait polls for a condition
// with a generous deadline: the machine is shared and may be slow.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { adminClients, type AdminClients } from './helpers/admin.ts';
import { publicApiDir, startAgent, type AgentProcess } from './helpers/agent-process.ts';
import { makeX509PopCerts } from './helpers/openssl.ts';
import { waitFor } from './helpers/ports.ts';
import { REPO, startServer, type ServerProcess } from './helpers/server-process.ts';
import {
  CHAINED,
  DEADLINE_MS,
  entriesForMe,
  joinToken,
  serves,
  startServingAgent,
} from './helpers/serving-agent.ts';

/** Runs `bin/tessera args…` to completion. */
function cli(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const p = spawn(path.join(REPO, 'bin/tessera'), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => p.once('exit', (code) => resolve({ code, stderr })));
}

/** The agent's exit code, or a failure naming its output when it does not exit in time. */
async function exitCode(agent: AgentProcess): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the agent did not exit within ${DEADLINE_MS} ms: ${agent.output()}`)),
      DEADLINE_MS,
    );
  });
  try {
    return await Promise.race([agent.exited(), late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('agent identity across restarts', () => {
  let server: ServerProcess;
  let admin: AdminClients;
  let pop: ReturnType<typeof makeX509PopCerts>;
  const agents: AgentProcess[] = [];

  before(async () => {
    pop = makeX509PopCerts(mkdtempSync(path.join(os.tmpdir(), 'tessera-pop-')), 'node-9.example');
    server = await startServer({
      config: { node_attestors: { join_token: {}, x509pop: { ca_bundle_file: pop.caFile } } },
    });
    admin = adminClients(server.adminSocket);
  });

  after(async () => {
    for (const a of agents) await a.stop();
    await server?.stop();
  });

  it(
    'an evicted agent started with a new --join-token attests with it and serves its workloads',
    CHAINED,
    async () => {
      const first = await startServingAgent(server, admin, []);
      const agent = first.agent;
      agents.push(agent);
      assert.equal(await agent.stop(), 0);
      await admin.agents.evictAgent({ spiffeId: first.agentSpiffeId });

      const second = await joinToken(admin);
      await entriesForMe(admin, second.agentSpiffeId, ['spiffe://example.org/after-evict']);
      const from = agent.output().length;
      await agent.restart(['--join-token', second.token]);
      await waitFor(
        () => serves(agent.socketPath, 'spiffe://example.org/after-evict'),
        DEADLINE_MS,
      );
      const node = await admin.agents.getAgent({ spiffeId: second.agentSpiffeId });
      assert.equal(node.agent?.spiffeId, second.agentSpiffeId);
      assert.equal(agent.proc.exitCode, null, 'the agent kept running');
      const out = agent.output().slice(from);
      assert.match(out, /reusing the persisted agent SVID/);
      assert.match(out, /"why":"refused: agent_unknown"/);
    },
  );

  it(
    'an evicted agent restarted without a new token exits 5, saying to use a new --join-token',
    CHAINED,
    async () => {
      const { agent, ...t } = await startServingAgent(server, admin, []);
      agents.push(agent);
      assert.equal(await agent.stop(), 0);
      await admin.agents.evictAgent({ spiffeId: t.agentSpiffeId });
      const from = agent.output().length;
      await agent.restart().catch(() => {}); // it may exit before or after it is ready
      assert.equal(await exitCode(agent), 5);
      assert.match(
        agent.output().slice(from),
        /the server refused this agent: agent spiffe:\/\/example\.org\/spire\/agent\/join_token\/\S+ is not attested \(evicted\?\); start the agent with a new --join-token/,
      );
    },
  );

  it(
    'an evicted agent restarted with its spent join token exits 5, giving both reasons',
    CHAINED,
    async () => {
      const { agent, ...t } = await startServingAgent(server, admin, []);
      agents.push(agent);
      assert.equal(await agent.stop(), 0);
      await admin.agents.evictAgent({ spiffeId: t.agentSpiffeId });
      const from = agent.output().length;
      await agent.restart(['--join-token', t.token]).catch(() => {});
      assert.equal(await exitCode(agent), 5);
      assert.match(
        agent.output().slice(from),
        /error: the server refused this agent \(agent \S+ is not attested \(evicted\?\)\), and attesting again failed: node attestation refused: join token does not exist, has expired or was already used/,
      );
    },
  );

  it(
    'a persisted SVID the server refuses at start is replaced by attesting with x509pop',
    CHAINED,
    async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-popkeys-'));
      writeFileSync(path.join(dir, 'node.pem'), pop.certPem);
      writeFileSync(path.join(dir, 'node.key'), pop.keyPem);
      const popArgs = [
        '--x509pop-cert',
        path.join(dir, 'node.pem'),
        '--x509pop-key',
        path.join(dir, 'node.key'),
      ];
      const agent = await startAgent(server, { args: popArgs });
      agents.push(agent);
      const id = (await admin.agents.listAgents({ byAttestationType: 'x509pop' })).agents[0]!
        .spiffeId;
      assert.equal(await agent.stop(), 0);
      await admin.agents.evictAgent({ spiffeId: id });
      const from = agent.output().length;
      await agent.restart(popArgs);
      await waitFor(
        () => admin.agents.getAgent({ spiffeId: id }).then((r) => r.agent !== undefined),
        DEADLINE_MS,
      );
      // The server records the node before the agent has its answer: wait for that too.
      await waitFor(() => agent.output().slice(from).includes('"msg":"attested"'), DEADLINE_MS);
      assert.equal(agent.proc.exitCode, null, 'the agent kept running');
      const out = agent.output().slice(from);
      assert.match(out, /reusing the persisted agent SVID/);
      assert.match(out, /"why":"refused: agent_unknown"/);
    },
  );
});

describe('agent Workload API socket', () => {
  let server: ServerProcess;
  let admin: AdminClients;
  let agent: AgentProcess;
  const others: AgentProcess[] = [];

  before(async () => {
    server = await startServer();
    admin = adminClients(server.adminSocket);
    ({ agent } = await startServingAgent(server, admin, ['spiffe://example.org/sock']));
  });

  after(async () => {
    for (const a of others) await a.kill();
    await agent?.stop();
    await server?.stop();
  });

  const newToken = async () => (await joinToken(admin)).token;

  it(
    'a second agent on the same socket refuses to start, naming the socket and --workload-socket',
    CHAINED,
    async () => {
      await waitFor(() => serves(agent.socketPath, 'spiffe://example.org/sock'), DEADLINE_MS);
      const second = await startAgent(server, {
        joinToken: await newToken(),
        socketPath: agent.socketPath,
        ready: false,
      });
      others.push(second);
      assert.equal(await exitCode(second), 7);
      assert.ok(
        second
          .output()
          .includes(
            `error: Workload API socket ${agent.socketPath} (--workload-socket, config socket_path): cannot listen: another process (another agent?) accepts connections on "${agent.socketPath}"`,
          ),
        second.output(),
      );
      assert.ok(
        await serves(agent.socketPath, 'spiffe://example.org/sock'),
        'the first one serves on',
      );
    },
  );

  it('removes its socket file when it stops', CHAINED, async () => {
    assert.equal(await agent.stop(), 0);
    assert.equal(existsSync(agent.socketPath), false);
    const r = await cli(['svid', 'fetch', '--workload-socket', agent.socketPath]);
    assert.equal(r.code, 6);
    assert.match(r.stderr, /no agent is listening on \S+ \(there is no socket file\)/);
  });

  it(
    'a killed agent leaves a socket file that clients call unserved, and a restart replaces',
    CHAINED,
    async () => {
      await agent.restart();
      await agent.kill();
      assert.ok(existsSync(agent.socketPath), 'SIGKILL left the socket file');
      const r = await cli(['svid', 'fetch', '--workload-socket', agent.socketPath]);
      assert.equal(r.code, 6);
      assert.equal(
        r.stderr,
        `error: no agent is listening on ${agent.socketPath} (the socket file exists, but nothing accepts connections); is the agent running? (use --workload-socket or SPIFFE_ENDPOINT_SOCKET)\n`,
      );
      await agent.restart();
      await waitFor(() => serves(agent.socketPath, 'spiffe://example.org/sock'), DEADLINE_MS);
    },
  );

  it(
    'a socket path taken by another file: exits 7 naming the listener, the file kept',
    CHAINED,
    async () => {
      const file = path.join(publicApiDir(), 'taken');
      writeFileSync(file, 'not a socket');
      const a = await startAgent(server, {
        joinToken: await newToken(),
        socketPath: file,
        ready: false,
      });
      others.push(a);
      assert.equal(await exitCode(a), 7);
      assert.match(
        a.output(),
        /error: Workload API socket \S+ \(--workload-socket, config socket_path\): cannot listen: "\S+" exists and is not a socket/,
      );
      assert.equal(readFileSync(file, 'utf8'), 'not a socket');
    },
  );

  it(
    'a socket directory that cannot be made: exits non-zero naming the listener',
    CHAINED,
    async () => {
      const parent = path.join(publicApiDir(), 'a-file');
      writeFileSync(parent, '');
      const socketPath = path.join(parent, 'api.sock');
      const a = await startAgent(server, {
        joinToken: await newToken(),
        socketPath,
        ready: false,
      });
      others.push(a);
      assert.equal(await exitCode(a), 7);
      assert.match(
        a.output(),
        /error: Workload API socket \S+ \(--workload-socket, config socket_path\): cannot listen: socket directory "\S+" is not a directory/,
      );
    },
  );
});

describe('agent SIGTERM', () => {
  let server: ServerProcess;
  let admin: AdminClients;
  let blackhole: net.Server;
  const sockets = new Set<net.Socket>();

  before(async () => {
    server = await startServer();
    admin = adminClients(server.adminSocket);
    // Accepts TCP connections and never answers: an attestation to it hangs in the handshake.
    blackhole = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
    });
    await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    blackhole?.close();
    await server?.stop();
  });

  it('exits 0 on SIGTERM while attesting to a server that never answers', CHAINED, async () => {
    const port = (blackhole.address() as net.AddressInfo).port;
    const t = await joinToken(admin);
    const agent = await startAgent(server, {
      joinToken: t.token,
      args: ['--server', `127.0.0.1:${port}`],
      ready: false,
    });
    await waitFor(() => agent.output().includes('attesting to the server'), DEADLINE_MS);
    await waitFor(() => sockets.size > 0, DEADLINE_MS);
    agent.proc.kill('SIGTERM');
    assert.equal(await exitCode(agent), 0, agent.output());
  });

  it(
    'exits 0 on SIGTERM while its server is down, and leaves no socket file',
    CHAINED,
    async () => {
      const { agent } = await startServingAgent(server, admin, []);
      await server.kill(); // gone at once, as after a crash: the agent retries its connection
      await waitFor(() => agent.output().includes('entry sync interrupted'), DEADLINE_MS);
      agent.proc.kill('SIGTERM');
      assert.equal(await exitCode(agent), 0, agent.output());
      assert.equal(existsSync(agent.socketPath), false);
    },
  );
});
