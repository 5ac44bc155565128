// Black-box: the proxy's local listeners (docs/injection.md "Local listeners"), with a real
// server, a real agent (proxy.listeners in its config file) and the real CLI. A `tcp` server
// workload in front of an echo server on this machine, a static-secret provider and an allow
// policy for this process's identity:
// - a client through 127.0.0.1:PORT is relayed (the decision released through the server), and
//   again from the agent's cache, whose use the server audits as the release chain marked
//   cached: true under one correlation id;
// - a caller without an identity (another uid, no entry) is refused, the listener keeps serving;
// - with the server stopped the listener keeps relaying (cached credential), and an agent
//   restarted meanwhile knows the server workload from its data dir;
// - with the policy deleted, connections are refused.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { adminClients } from './helpers/admin.ts';
import type { AgentProcess } from './helpers/agent-process.ts';
import { runCli } from './helpers/cli-process.ts';
import { freePort, waitFor } from './helpers/ports.ts';
import { CLI, startServer, type ServerProcess } from './helpers/server-process.ts';
import { CHAINED, DEADLINE_MS, startServingAgent } from './helpers/serving-agent.ts';

const ME = 'spiffe://example.org/proxy/client';
const SECRET = 'tcp-secret-6d1f0c2a-not-for-logs';
const OTHER_UID = 1502;
const root = process.getuid?.() === 0;

/** Sends `text` through 127.0.0.1:port; the echoed text, or "" when the connection is refused. */
function roundTrip(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let got = '';
    const timer = setTimeout(() => s.destroy(), 15_000);
    s.setEncoding('utf8');
    s.on('connect', () => s.write(text));
    s.on('data', (d: string) => {
      got += d;
      if (got.length >= text.length) s.end();
    });
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
  });
}

describe('proxy local listeners', CHAINED, () => {
  let server: ServerProcess;
  let agent: AgentProcess;
  let echo: net.Server;
  let dir: string;
  let port: number;
  const admin = (...args: string[]) =>
    runCli(args, { env: { TESSERA_ADMIN_SOCKET: server.adminSocket }, deadlineMs: 90_000 });
  async function ok(...args: string[]): Promise<string> {
    const r = await admin(...args);
    assert.equal(r.code, 0, `tessera ${args.join(' ')}\n${r.stderr}`);
    return r.stdout;
  }

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-proxy-listener-'));
    echo = net.createServer((s) => s.pipe(s).on('error', () => {}));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const echoPort = (echo.address() as net.AddressInfo).port;
    server = await startServer();
    const put = spawnSync(process.execPath, [CLI, 'secret', 'put', 'echo-key', '--from-stdin'], {
      input: SECRET,
      env: { ...process.env, TESSERA_ADMIN_SOCKET: server.adminSocket },
      encoding: 'utf8',
    });
    assert.equal(put.status, 0, put.stderr);
    await ok(
      ...['server-workload', 'create', '--name', 'echo', '--host', '127.0.0.1'],
      ...['--port', String(echoPort), '--protocol', 'tcp'],
    );
    await ok(
      ...['credential-provider', 'create', '--name', 'echo-key', '--type', 'static-secret'],
      ...['--set', 'secret=echo-key'],
    );
    await ok(
      ...['access-policy', 'create', '--name', 'me-echo', '--client', ME, '--server', 'echo'],
      ...['--credential-provider', 'echo-key'],
    );
    port = await freePort();
    const config = path.join(dir, 'agent.yaml');
    writeFileSync(
      config,
      `proxy:\n  listeners:\n    - server_workload: echo\n      listen: "127.0.0.1:${port}"\n`,
    );
    ({ agent } = await startServingAgent(server, adminClients(server.adminSocket), [ME], {
      args: ['--config', config],
    }));
  });

  after(async () => {
    await agent?.stop();
    await server?.stop();
    echo?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('relays an allowed client, then again from the cache, audited as cached', async () => {
    // The agent learns the server workload from the server shortly after it starts.
    await waitFor(async () => (await roundTrip(port, 'hello')) === 'hello', DEADLINE_MS);
    assert.equal(await roundTrip(port, 'again'), 'again');
    let chain: Array<{ action: string; details: Record<string, unknown> }> = [];
    await waitFor(async () => {
      const out = await ok('audit', 'list', '--action', 'access.credential', '--output', 'json');
      const cached = (JSON.parse(out) as { records: Array<Record<string, unknown>> }).records.find(
        (r) => (r.details as Record<string, unknown>)?.cached === true,
      );
      if (!cached) return false;
      const id = String(cached.correlationId);
      const all = await ok('audit', 'list', '--correlation-id', id, '--output', 'json');
      chain = (JSON.parse(all) as { records: typeof chain }).records;
      return chain.length === 3;
    }, DEADLINE_MS);
    assert.deepEqual(
      chain.map((r) => r.action),
      ['access.request', 'access.authorization', 'access.credential'],
    );
    for (const r of chain) assert.equal(r.details.cached, true, JSON.stringify(r));
    assert.equal(chain[2]?.details.provider, 'echo-key');
    assert.ok(!agent.output().includes(SECRET), 'the credential is never logged');
  });

  it(
    'refuses a caller without an identity and keeps serving others',
    { skip: !root && 'needs root to connect as another uid' },
    async () => {
      await waitFor(async () => (await roundTrip(port, 'ready')) === 'ready', DEADLINE_MS);
      const child = spawnSync(
        process.execPath,
        [
          '-e',
          `const s=require('net').connect(${port},'127.0.0.1',()=>s.write('x'));let g='';` +
            `s.on('data',d=>g+=d);s.on('error',()=>{});s.on('close',()=>{process.stdout.write(JSON.stringify(g))})`,
        ],
        { uid: OTHER_UID, gid: OTHER_UID, encoding: 'utf8', timeout: 30_000 },
      );
      assert.equal(child.stdout, '""', child.stderr);
      // spawnSync held this process: the agent's log arrives now.
      await waitFor(
        () =>
          /"reason":"no identity issued","msg":"local listener refused a connection"/.test(
            agent.output(),
          ),
        DEADLINE_MS,
      );
      assert.equal(await roundTrip(port, 'still'), 'still');
    },
  );

  it('keeps relaying while the server is away; a restarted agent remembers the server workload', async () => {
    assert.equal(await roundTrip(port, 'warm'), 'warm');
    await server.stop();
    try {
      assert.equal(await roundTrip(port, 'cached'), 'cached');
      await agent.stop();
      await agent.restart(['--config', path.join(dir, 'agent.yaml')]);
      await waitFor(() => /"serverWorkload":"echo","known":true/.test(agent.output()), DEADLINE_MS);
    } finally {
      await server.restart();
    }
    await waitFor(async () => (await roundTrip(port, 'back')) === 'back', DEADLINE_MS);
  });

  it('refuses connections once the policy is deleted', async () => {
    await ok('access-policy', 'delete', 'me-echo');
    await waitFor(async () => (await roundTrip(port, 'no')) === '', DEADLINE_MS);
    // The client saw the close; the agent's log line arrives through a pipe, maybe later.
    await waitFor(() => /tcp connection refused/.test(agent.output()), DEADLINE_MS);
  });
});
