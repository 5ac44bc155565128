// Black-box: the proxy's local listeners (docs/injection.md "Local listeners"), with a real
// server, a real agent (proxy.listeners in its config file) and the real CLI (helpers/
// proxy-stack.ts). A `tcp` server workload in front of an echo server on this machine, a
// static-secret provider and an allow policy for this process's identity:
// - a client through 127.0.0.1:PORT is relayed (the decision released through the server), and
//   again from the agent's cache, whose use the server audits as the release chain marked
//   cached: true under one correlation id;
// - a caller without an identity (another uid, no entry) is refused, the listener keeps serving;
// - with the server stopped the listener keeps relaying (cached credential), and an agent
//   restarted meanwhile knows the server workload from its data dir;
// - with the policy deleted, connections are refused.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { waitFor } from './helpers/ports.ts';
import { grant, startProxyStack, type ProxyStack } from './helpers/proxy-stack.ts';
import { CHAINED, DEADLINE_MS } from './helpers/serving-agent.ts';

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
  let stack: ProxyStack;
  let echo: net.Server | undefined;
  let port: number;

  before(async () => {
    echo = net.createServer((s) => s.pipe(s).on('error', () => {}));
    await new Promise<void>((r) => echo!.listen(0, '127.0.0.1', r));
    const echoPort = (echo.address() as net.AddressInfo).port;
    stack = await startProxyStack({
      name: 'listener',
      clients: [ME],
      secrets: { 'echo-key': SECRET },
      access: {
        server_workloads: [{ name: 'echo', host: '127.0.0.1', port: echoPort, protocol: 'tcp' }],
        credential_providers: [
          { name: 'echo-key', type: 'static-secret', config: { secret: 'echo-key' } },
        ],
        access_policies: [grant(ME, 'echo', 'echo-key')],
      },
      listeners: ['echo'],
    });
    port = stack.port('echo');
  });

  after(async () => {
    await stack?.stop();
    echo?.close();
  });

  it('relays an allowed client, then again from the cache, audited as cached', async () => {
    // The agent learns the server workload from the server shortly after it starts.
    await waitFor(async () => (await roundTrip(port, 'hello')) === 'hello', DEADLINE_MS);
    assert.equal(await roundTrip(port, 'again'), 'again');
    const chain = await stack.auditChain((r) => r.details.cached === true);
    for (const r of chain) assert.equal(r.details.cached, true, JSON.stringify(r));
    assert.equal(chain[2]?.details.provider, 'echo-key');
    assert.ok(!stack.agent.output().includes(SECRET), 'the credential is never logged');
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
            stack.agent.output(),
          ),
        DEADLINE_MS,
      );
      assert.equal(await roundTrip(port, 'still'), 'still');
    },
  );

  it('keeps relaying while the server is away; a restarted agent remembers the server workload', async () => {
    assert.equal(await roundTrip(port, 'warm'), 'warm');
    const { server, agent } = stack;
    await server.stop();
    try {
      assert.equal(await roundTrip(port, 'cached'), 'cached');
      await agent.stop();
      await agent.restart(['--config', stack.agentConfig]);
      await waitFor(() => /"serverWorkload":"echo","known":true/.test(agent.output()), DEADLINE_MS);
    } finally {
      await server.restart();
    }
    await waitFor(async () => (await roundTrip(port, 'back')) === 'back', DEADLINE_MS);
  });

  it('refuses connections once the policy is deleted', async () => {
    await stack.ok('access-policy', 'delete', 'me-echo');
    await waitFor(async () => (await roundTrip(port, 'no')) === '', DEADLINE_MS);
    // The client saw the close; the agent's log line arrives through a pipe, maybe later.
    await waitFor(() => /tcp connection refused/.test(stack.agent.output()), DEADLINE_MS);
  });
});
