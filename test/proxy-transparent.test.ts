// The transparent redirect for real, inside a network namespace this test creates: the rules
// `tessera agent proxy rules` prints are applied there with iptables, the agent's transparent
// listener and an upstream run there, and client processes of two uids connect to the server
// workload's address. The selected uid is redirected (the listener reads SO_ORIGINAL_DST, finds
// the server workload, the handler adds the credential); the other uid reaches the upstream
// directly. ProxyConnections and the handler are test stand-ins (test/helpers/
// transparent-fixture.ts) until proxy-core's are on main.
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from './helpers/cli-process.ts';
import { REPO } from './helpers/server-process.ts';
import { waitFor } from './helpers/ports.ts';

const SELECTED = 65534;
const OTHER = 65533;
const WORKLOAD = '10.77.0.5';
const NOT_A_WORKLOAD = '10.77.0.6';
const PORT = 7000;
const LISTEN = 15001;

const root = process.getuid?.() === 0;
const tools = ['ip', 'iptables', 'setpriv'].every(
  (t) => spawnSync('sh', ['-c', `command -v ${t} || test -x /usr/sbin/${t}`]).status === 0,
);
const skip = !root
  ? 'needs root: creates a network namespace and applies iptables rules in it'
  : !tools
    ? 'needs ip, iptables and setpriv (.ci/run installs iptables)'
    : false;

function sh(args: string[], input?: string): string {
  const r = spawnSync(args[0] as string, args.slice(1), {
    input,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` },
    timeout: 30_000,
  });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  return r.stdout;
}

/** A client process of `uid` in the namespace: connects, sends "hello", prints what it got. */
function client(ns: string, uid: number, host: string, port: number): Promise<string> {
  const script = `
    const s = require('node:net').connect(${port}, ${JSON.stringify(host)});
    let got = '';
    s.on('connect', () => s.write('hello\\n'));
    s.on('data', (d) => { got += d; if (got.includes('upstream: hello')) s.end(); });
    s.on('error', (e) => { got += 'error: ' + e.code; });
    s.on('close', () => { process.stdout.write(got + '|closed'); });
    setTimeout(() => { process.stdout.write(got + '|timeout'); process.exit(0); }, 20000).unref();
  `;
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      'setpriv',
      `--reuid=${uid}`,
      `--regid=${uid}`,
      '--clear-groups',
      process.execPath,
      '-e',
      script,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` },
    },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) =>
    child.once('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`client exit ${code}: ${err}`)),
    ),
  );
}

describe('transparent redirect in a network namespace', { skip }, () => {
  const ns = `tessera-t-${process.pid}-${randomBytes(3).toString('hex')}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-transparent-'));
  let fixture: ReturnType<typeof spawn> | undefined;
  let log = '';

  before(async () => {
    sh(['ip', 'netns', 'add', ns]);
    sh(['ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
    for (const a of [WORKLOAD, NOT_A_WORKLOAD]) {
      sh(['ip', 'netns', 'exec', ns, 'ip', 'addr', 'add', `${a}/32`, 'dev', 'lo']);
    }
    const config = path.join(dir, 'agent.yaml');
    writeFileSync(
      config,
      [
        'trust_domain: example.org',
        'server_address: 127.0.0.1:8081',
        'proxy:',
        `  transparent_listen: 127.0.0.1:${LISTEN}`,
        '  transparent:',
        `    uids: [${SELECTED}]`,
      ].join('\n'),
    );
    const rules = await runCli(['agent', 'proxy', 'rules', '--config', config, '--agent-uid', '0']);
    assert.equal(rules.code, 0, rules.stderr);
    assert.match(
      rules.stdout,
      new RegExp(`--uid-owner ${SELECTED} -j REDIRECT --to-ports ${LISTEN}`),
    );
    sh(['ip', 'netns', 'exec', ns, 'sh', '-e'], rules.stdout);

    fixture = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        process.execPath,
        path.join(REPO, 'test/helpers/transparent-fixture.ts'),
        '--upstream',
        `${WORKLOAD}:${PORT}`,
        '--listen',
        `127.0.0.1:${LISTEN}`,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` },
      },
    );
    fixture.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    fixture.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    await waitFor(() => log.includes('ready'), 60_000, 100).catch(() => {
      throw new Error(`the fixture did not start:\n${log}`);
    });
  });

  after(() => {
    fixture?.kill('SIGTERM');
    spawnSync('ip', ['netns', 'del', ns], {
      env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` },
    });
    rmSync(dir, { recursive: true, force: true });
  });

  it('redirects the selected uid: the handler injects the credential', async () => {
    const out = await client(ns, SELECTED, WORKLOAD, PORT);
    assert.equal(out, 'upstream: credential=brokered-token\nupstream: hello\n|closed');
    assert.match(log, /"msg":"stand-in: open","server":"echo","wayIn":"transparent"/);
  });

  it('leaves another uid alone: it reaches the upstream directly', async () => {
    const out = await client(ns, OTHER, WORKLOAD, PORT);
    assert.equal(out, 'upstream: hello\n|closed');
  });

  it('closes a redirected connection to an address that is no server workload', async () => {
    const out = await client(ns, SELECTED, NOT_A_WORKLOAD, PORT);
    assert.match(out, /^(?:error: ECONNRESET)?\|closed$/); // closed unread: a reset is fine
    await waitFor(() => log.includes(`"destination":"${NOT_A_WORKLOAD}:${PORT}"`), 10_000, 50);
    assert.match(log, /no server workload at the destination, closed/);
  });

  it('closes a connection made to the listener directly (loopback is not redirected)', async () => {
    const out = await client(ns, SELECTED, '127.0.0.1', LISTEN);
    assert.match(out, /^(?:error: ECONNRESET)?\|closed$/);
    await waitFor(() => log.includes('no original destination'), 10_000, 50);
    assert.match(log, /the connection was not redirected/);
  });
});
