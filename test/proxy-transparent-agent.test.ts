// Black-box: the transparent redirect with a real server and agent (docs/injection.md
// "Transparent redirect"). The test moves into a network namespace of its own (helpers/netns.ts):
// the server, the agent (proxy.transparent_listen, transparent.ipv6 in its config), the CLI and
// HTTP upstreams at the namespace's own addresses (IPv4 and IPv6) all run there, and the rules
// `tessera agent proxy rules --config` prints (iptables and ip6tables) are applied there. Then,
// with curl as unmodified client:
// - a client of the selected uid (with an entry and an allow policy) connecting to a server
//   workload's address — IPv4 or IPv6 — is redirected to the agent, attested by its socket to the
//   original destination, and the credential is added (the upstream checks the header);
// - a client of another uid is not redirected: it reaches the upstream directly, without one;
// - the selected uid connecting to an address that is no server workload is closed (passthrough
//   off), and so is a connection made to the listener directly (not redirected);
// - with the policy deleted the selected uid gets the proxy's 403 naming the denial;
// - the agent restarted with proxy.passthrough: the address that is no server workload is
//   tunnelled untouched (nothing injected), while the server workload is still decided (403).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { entry } from './helpers/admin.ts';
import { runCli } from './helpers/cli-process.ts';
import { enterNewNetns, sh, SBIN_PATH, type EnteredNetns } from './helpers/netns.ts';
import { waitFor } from './helpers/ports.ts';
import { startProxyStack, type ProxyStack } from './helpers/proxy-stack.ts';
import { CHAINED, DEADLINE_MS } from './helpers/serving-agent.ts';

const SELECTED = 65534;
const OTHER = 65533;
const WORKLOAD = '10.77.0.5';
const WORKLOAD6 = 'fd77::5';
const NOT_A_WORKLOAD = '10.77.0.6';
const PORT = 7000;
const LISTEN = 15001;
const CLIENT_ID = 'spiffe://example.org/transparent/client';
const SECRET = 'transparent-key-3b9e7a-not-for-logs';
const url = (host: string, port = PORT) =>
  `http://${host.includes(':') ? `[${host}]` : host}:${port}/hello`;

const root = process.getuid?.() === 0;
const tools = ['ip', 'iptables', 'ip6tables', 'curl'].every(
  (t) =>
    spawnSync('sh', ['-c', `command -v ${t}`], { env: { ...process.env, PATH: SBIN_PATH } })
      .status === 0,
);
const skip = !root
  ? 'needs root: creates a network namespace and applies iptables rules in it'
  : !tools
    ? 'needs ip, iptables, ip6tables and curl (.ci/run installs iptables)'
    : false;

/** curl as `uid` to `target`: "STATUS BODY", or "error: ..." */
function curlAs(uid: number, target: string): Promise<string> {
  const child = spawn('curl', ['-sS', '--max-time', '20', '-w', ' %{http_code}', target], {
    uid,
    gid: uid,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
  let stack: ProxyStack | undefined;
  const upstreams: http.Server[] = [];
  /** The agent's log since `from` (a restart appends to the same output). */
  const logSince = (from: number) => stack!.agent.output().slice(from);

  before(async () => {
    netns = enterNewNetns(ns, [`${WORKLOAD}/32`, `${NOT_A_WORKLOAD}/32`, `${WORKLOAD6}/128`]);
    // Each upstream checks the credential header (never echoes it: the proxy would strip the
    // credential from the answer) and says which address it is.
    for (const host of [WORKLOAD, WORKLOAD6, NOT_A_WORKLOAD]) {
      const upstream = http.createServer((req, res) => {
        const key = req.headers['x-api-key'];
        res.end(`${host} key=${key === undefined ? 'none' : key === SECRET ? 'ok' : 'wrong'}`);
      });
      upstreams.push(upstream);
      await new Promise<void>((resolve, reject) => {
        upstream.once('error', reject);
        upstream.listen(PORT, host, resolve);
      });
    }
    const api = (name: string, host: string) => ({
      name,
      host,
      port: PORT,
      protocol: 'http',
      present: 'header:X-Api-Key',
    });
    const allow = (server: string) => ({
      name: `client-${server}`,
      client: CLIENT_ID,
      server,
      credential_provider: 'api-key',
    });
    stack = await startProxyStack({
      name: 'transparent',
      secrets: { 'api-key': SECRET },
      access: {
        // The IPv6 host as an operator may write it: the kernel reports the destination compressed.
        server_workloads: [api('api', WORKLOAD), api('api6', 'FD77:0:0:0:0:0:0:5')],
        credential_providers: [
          { name: 'api-key', type: 'static-secret', config: { secret: 'api-key' } },
        ],
        access_policies: [allow('api'), allow('api6')],
      },
      proxy: {
        transparent_listen: `127.0.0.1:${LISTEN}`,
        transparent: { uids: [SELECTED], ipv6: true },
      },
    });
    await stack.admins.entries.batchCreateEntry({
      entries: [entry(CLIENT_ID, stack.agentSpiffeId, [`unix:uid:${SELECTED}`])],
    });
    // The agent runs as root (uid 0): its own connections are never redirected.
    const rules = await runCli(
      ['agent', 'proxy', 'rules', '--config', stack.agentConfig, '--agent-uid', '0'],
      { deadlineMs: 90_000 },
    );
    assert.equal(rules.code, 0, rules.stderr);
    assert.match(rules.stdout, /^ip6tables -t nat -A TESSERA_TRANSPARENT -d ::1\/128 -j RETURN$/m);
    sh(['sh', '-e'], rules.stdout);
  });

  after(async () => {
    await stack?.stop();
    for (const u of upstreams) u.close();
    netns?.leave();
  });

  it('adds the credential for the selected uid', async () => {
    // The entry and the server workload reach the agent shortly after it starts.
    let got = '';
    const want = `200 ${WORKLOAD} key=ok`;
    await waitFor(
      async () => (got = await curlAs(SELECTED, url(WORKLOAD))) === want,
      DEADLINE_MS,
    ).catch(() => assert.fail(`last answer: ${got}\n${stack?.agent.output()}`));
  });

  it('adds it for an IPv6 destination too (ip6tables, the [::1] listener)', async () => {
    const got = await curlAs(SELECTED, url(WORKLOAD6));
    assert.equal(got, `200 ${WORKLOAD6} key=ok`, stack!.agent.output().slice(-3000));
  });

  it('leaves another uid alone: it reaches the server workloads directly', async () => {
    assert.equal(await curlAs(OTHER, url(WORKLOAD)), `200 ${WORKLOAD} key=none`);
    assert.equal(await curlAs(OTHER, url(WORKLOAD6)), `200 ${WORKLOAD6} key=none`);
  });

  it('closes a destination that is no server workload (passthrough off)', async () => {
    const from = stack!.agent.output().length;
    assert.match(await curlAs(SELECTED, url(NOT_A_WORKLOAD)), /^error: curl exit (52|56):/);
    await waitFor(
      () =>
        logSince(from).includes(`"destination":"${NOT_A_WORKLOAD}:${PORT}"`) &&
        logSince(from).includes('no server workload at the destination, closed'),
      DEADLINE_MS,
    );
  });

  it('closes a connection made to the listener directly (loopback is not redirected)', async () => {
    const from = stack!.agent.output().length;
    assert.match(await curlAs(SELECTED, url('127.0.0.1', LISTEN)), /^error: curl exit (52|56):/);
    await waitFor(
      () =>
        logSince(from).includes('no original destination') &&
        logSince(from).includes('the connection was not redirected'),
      DEADLINE_MS,
    );
  });

  it('answers 403 naming the denial once the policy is deleted', async () => {
    await stack!.ok('access-policy', 'delete', 'client-api');
    let got = '';
    await waitFor(
      async () => (got = await curlAs(SELECTED, url(WORKLOAD))).startsWith('403 '),
      DEADLINE_MS,
    ).catch(() => assert.fail(`last answer: ${got}`));
    const body = JSON.parse(got.slice(4)) as Record<string, unknown>;
    assert.equal(typeof body.reason, 'string', got);
    assert.ok(!got.includes(SECRET));
    assert.equal(await curlAs(OTHER, url(WORKLOAD)), `200 ${WORKLOAD} key=none`);
  });

  it('with proxy.passthrough: tunnels the unknown destination untouched, still decides the rest', async () => {
    const s = stack!;
    s.reconfigure({ passthrough: true });
    await s.agent.stop();
    const from = s.agent.output().length;
    await s.agent.restart(['--config', s.agentConfig]);
    await waitFor(
      () => /"passthrough":true,"msg":"transparent listener ready"/.test(logSince(from)),
      DEADLINE_MS,
    );
    assert.equal(await curlAs(SELECTED, url(NOT_A_WORKLOAD)), `200 ${NOT_A_WORKLOAD} key=none`);
    await waitFor(() => logSince(from).includes('transparent proxy: passthrough'), DEADLINE_MS);
    // A server workload is never passed through: the (deleted) policy still decides.
    let got = '';
    await waitFor(
      async () => (got = await curlAs(SELECTED, url(WORKLOAD))).startsWith('403 '),
      DEADLINE_MS,
    ).catch(() => assert.fail(`last answer: ${got}`));
    assert.equal(await curlAs(SELECTED, url(WORKLOAD6)), `200 ${WORKLOAD6} key=ok`);
    assert.ok(!s.agent.output().includes(SECRET), 'the credential is never logged');
  });
});
