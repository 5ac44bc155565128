// Black-box: the transparent redirect with a real server and agent (docs/injection.md
// "Transparent redirect"). The test moves into a network namespace of its own (helpers/netns.ts):
// the server, the agent (proxy.transparent_listen in its config), the CLI and an HTTP server
// workload at an address of the namespace all run there, and the rules `tessera agent proxy rules
// --config` prints are applied there with iptables. Then, with curl as unmodified client:
// - a client of the selected uid (with an entry and an allow policy) connecting to the server
//   workload's address is redirected to the agent, attested by its socket to the original
//   destination, and the credential is added (the upstream checks the header);
// - a client of another uid is not redirected: it reaches the upstream directly, without one;
// - with the policy deleted the selected uid gets the proxy's 403 naming the denial.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { adminClients, entry } from './helpers/admin.ts';
import type { AgentProcess } from './helpers/agent-process.ts';
import { runCli } from './helpers/cli-process.ts';
import { enterNewNetns, sh, SBIN_PATH, type EnteredNetns } from './helpers/netns.ts';
import { waitFor } from './helpers/ports.ts';
import { CLI, startServer, type ServerProcess } from './helpers/server-process.ts';
import { CHAINED, DEADLINE_MS, startServingAgent } from './helpers/serving-agent.ts';

const SELECTED = 65534;
const OTHER = 65533;
const WORKLOAD = '10.77.0.5';
const PORT = 7000;
const LISTEN = 15001;
const CLIENT_ID = 'spiffe://example.org/transparent/client';
const SECRET = 'transparent-key-3b9e7a-not-for-logs';

const root = process.getuid?.() === 0;
const tools = ['ip', 'iptables', 'curl'].every(
  (t) =>
    spawnSync('sh', ['-c', `command -v ${t}`], { env: { ...process.env, PATH: SBIN_PATH } })
      .status === 0,
);
const skip = !root
  ? 'needs root: creates a network namespace and applies iptables rules in it'
  : !tools
    ? 'needs ip, iptables and curl (.ci/run installs iptables)'
    : false;

/** curl as `uid` to the server workload's address: "STATUS BODY", or "error: ..." */
function curlAs(uid: number): Promise<string> {
  const child = spawn(
    'curl',
    ['-sS', '--max-time', '20', '-w', ' %{http_code}', `http://${WORKLOAD}:${PORT}/hello`],
    { uid, gid: uid, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve) =>
    child.once('close', (code) => {
      if (code !== 0) return resolve(`error: curl exit ${code}: ${err}`);
      const at = out.lastIndexOf(' ');
      resolve(`${out.slice(at + 1)} ${out.slice(0, at)}`);
    }),
  );
}

describe('transparent redirect through a real agent', { ...CHAINED, skip }, () => {
  const ns = `tessera-ta-${process.pid}-${randomBytes(3).toString('hex')}`;
  let netns: EnteredNetns | undefined;
  let dir: string;
  let server: ServerProcess | undefined;
  let agent: AgentProcess | undefined;
  let upstream: http.Server | undefined;
  const admin = (...args: string[]) =>
    runCli(args, { env: { TESSERA_ADMIN_SOCKET: server!.adminSocket }, deadlineMs: 90_000 });
  async function ok(...args: string[]): Promise<string> {
    const r = await admin(...args);
    assert.equal(r.code, 0, `tessera ${args.join(' ')}\n${r.stderr}`);
    return r.stdout;
  }

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-transparent-agent-'));
    netns = enterNewNetns(ns, [`${WORKLOAD}/32`]);
    // The server workload checks the credential header (it never echoes it: the proxy would
    // strip the credential from the answer).
    upstream = http.createServer((req, res) => {
      const key = req.headers['x-api-key'];
      res.end(`key=${key === undefined ? 'none' : key === SECRET ? 'ok' : 'wrong'}`);
    });
    await new Promise<void>((r) => upstream!.listen(PORT, WORKLOAD, r));
    server = await startServer();
    const put = spawnSync(process.execPath, [CLI, 'secret', 'put', 'api-key', '--from-stdin'], {
      input: SECRET,
      env: { ...process.env, TESSERA_ADMIN_SOCKET: server.adminSocket },
      encoding: 'utf8',
    });
    assert.equal(put.status, 0, put.stderr);
    await ok(
      ...['server-workload', 'create', '--name', 'api', '--host', WORKLOAD],
      ...['--port', String(PORT), '--protocol', 'http', '--present', 'header:X-Api-Key'],
    );
    await ok(
      ...['credential-provider', 'create', '--name', 'api-key', '--type', 'static-secret'],
      ...['--set', 'secret=api-key'],
    );
    await ok(
      ...['access-policy', 'create', '--name', 'client-api', '--client', CLIENT_ID],
      ...['--server', 'api', '--credential-provider', 'api-key'],
    );
    const config = path.join(dir, 'agent.yaml');
    writeFileSync(
      config,
      [
        `trust_domain: ${server.trustDomain}`,
        `server_address: ${server.apiAddr}`,
        'proxy:',
        `  transparent_listen: 127.0.0.1:${LISTEN}`,
        '  transparent:',
        `    uids: [${SELECTED}]`,
      ].join('\n'),
    );
    const adminApi = adminClients(server.adminSocket);
    const started = await startServingAgent(server, adminApi, [], { args: ['--config', config] });
    agent = started.agent;
    await adminApi.entries.batchCreateEntry({
      entries: [entry(CLIENT_ID, started.agentSpiffeId, [`unix:uid:${SELECTED}`])],
    });
    // The agent runs as root (uid 0): its own connections are never redirected.
    const rules = await runCli(['agent', 'proxy', 'rules', '--config', config, '--agent-uid', '0']);
    assert.equal(rules.code, 0, rules.stderr);
    sh(['sh', '-e'], rules.stdout);
  });

  after(async () => {
    await agent?.stop();
    await server?.stop();
    upstream?.close();
    netns?.leave();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('adds the credential for the selected uid', async () => {
    // The entry and the server workload reach the agent shortly after it starts.
    let got = '';
    await waitFor(async () => (got = await curlAs(SELECTED)) === '200 key=ok', DEADLINE_MS).catch(
      () => assert.fail(`last answer: ${got}\n${agent?.output()}`),
    );
    assert.ok(!agent!.output().includes(SECRET), 'the credential is never logged');
  });

  it('leaves another uid alone: it reaches the server workload directly', async () => {
    assert.equal(await curlAs(OTHER), '200 key=none');
  });

  it('answers 403 naming the denial once the policy is deleted', async () => {
    await ok('access-policy', 'delete', 'client-api');
    let got = '';
    await waitFor(async () => (got = await curlAs(SELECTED)).startsWith('403 '), DEADLINE_MS).catch(
      () => assert.fail(`last answer: ${got}`),
    );
    const body = JSON.parse(got.slice(4)) as Record<string, unknown>;
    assert.equal(typeof body.reason, 'string', got);
    assert.ok(!got.includes(SECRET));
    assert.equal(await curlAs(OTHER), '200 key=none');
  });
});
