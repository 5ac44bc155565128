// Black box: nothing a crash leaves behind outlives the next start, and a data or socket directory
// another user could change is refused. A server killed with SIGKILL in the middle of `authority
// prepare` is hard to time, so the temp files such a kill leaves are made by hand (the writer's
// exact name pattern, 0600, a private key inside) in the data dir of a stopped process, which is
// then started again.
import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { adminClients } from './helpers/admin.ts';
import { startAgent, type AgentProcess } from './helpers/agent-process.ts';
import { runCli } from './helpers/cli-process.ts';
import { freePort } from './helpers/ports.ts';
import { startServer, type ServerProcess } from './helpers/server-process.ts';
import { joinToken } from './helpers/serving-agent.ts';

const UID = process.getuid?.() ?? 0;
/** Another local user (the tests run as root, so they can hand directories to it). */
const OTHER = 4321;
const root = mkdtempSync(path.join(os.tmpdir(), 'tessera-leftovers-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** What an interrupted key write leaves: 0600, a PKCS#8 private key. */
function plant(file: string, from: string): void {
  writeFileSync(file, readFileSync(from), { mode: 0o600 });
}

const modeOf = (p: string) => statSync(p).mode & 0o7777;

describe('server start after a crash', () => {
  let server: ServerProcess;

  before(async () => {
    mkdirSync(path.join(root, 'server', 'data'), { recursive: true });
    server = await startServer({ dataDir: path.join(root, 'server', 'data') });
  });
  after(async () => {
    await server?.stop();
  });

  it('removes the temp files of interrupted writes in its data dir, nothing else; tightens 0755 to 0700', async () => {
    assert.equal(await server.stop(), 0, server.output());
    const data = server.dataDir;
    const keys = path.join(data, 'keys');
    const key = readdirSync(keys).find((n) => n.startsWith('x509-') && n.endsWith('.pem'));
    assert.ok(key, `an X.509 authority key in ${keys}`);
    const keyFile = path.join(keys, key);
    // Exactly what writeFileAtomic leaves when killed before its rename.
    const orphans = [
      path.join(keys, `.${key}.tmp-0123456789ab`),
      path.join(keys, '.x509-00000000000000000000000000000001.pem.tmp-fedcba987654'),
      path.join(data, '.server-id.tmp-a1b2c3d4e5f6'),
    ];
    // Look-alikes, and temp names in directories that are not the server's: all stay.
    const outside = path.join(root, 'server', 'keys');
    mkdirSync(outside);
    const kept = [
      path.join(keys, `.${key}.tmp-0123456789abc`),
      path.join(keys, `.${key}.tmp-0123456789AB`),
      path.join(keys, `${key}.tmp-0123456789ab`),
      path.join(keys, `.${key}.tmp-0123456789ab.bak`),
      path.join(data, '.server.yaml.tmp-0123456789ab'), // not a file this server writes atomically
      path.join(data, `.${key}.tmp-0123456789ab`), // a key's temp, but not in the key directory
      path.join(root, 'server', `.server-id.tmp-0123456789ab`), // beside the data dir
      path.join(outside, `.${key}.tmp-0123456789ab`),
    ];
    for (const f of [...orphans, ...kept]) plant(f, keyFile);
    chmodSync(data, 0o755);

    await server.restart();
    for (const f of orphans) assert.equal(existsSync(f), false, `${f} removed`);
    for (const f of kept) assert.equal(existsSync(f), true, `${f} kept`);
    assert.ok(existsSync(keyFile), 'the key itself stays');
    const out = server.output();
    for (const f of orphans) {
      assert.ok(
        out.includes(`removed ${f}, left by a write that a crash or kill interrupted`),
        out,
      );
    }
    assert.equal(modeOf(data), 0o700);
    assert.ok(
      out.includes(`data directory ${data} had mode 0755, open to other users: tightened to 0700`),
      out,
    );
    // restart() waited for /readyz, which needs the active authorities' keys: it signs on.
  });
});

/** `tessera server run` on `dataDir` with free ports, to completion. */
async function serverRun(dataDir: string) {
  return runCli([
    'server',
    'run',
    '--trust-domain',
    'example.org',
    '--data-dir',
    dataDir,
    '--listen',
    `127.0.0.1:${await freePort()}`,
    '--health-listen',
    `127.0.0.1:${await freePort()}`,
  ]);
}

describe('a data directory another user could change is refused', () => {
  it('server: owned by another uid → exit 7 naming it, its owner and mode; nothing written', async () => {
    const dir = path.join(root, 'theirs-server');
    mkdirSync(dir);
    chownSync(dir, OTHER, OTHER);
    chmodSync(dir, 0o755);
    const r = await serverRun(dir);
    assert.equal(r.code, 7, r.stderr);
    assert.ok(
      r.stderr.includes(
        `error: data directory ${dir} is owned by uid ${OTHER} (mode 0755), not by this process (uid ${UID}): ` +
          `another user could read or replace its files; chown it to uid ${UID}, or give this process its own --data-dir`,
      ),
      r.stderr,
    );
    assert.deepEqual(readdirSync(dir), []);
    assert.equal(modeOf(dir), 0o755);
  });

  it('server: writable by every user → exit 7 naming it', async () => {
    const dir = path.join(root, 'shared-server');
    mkdirSync(dir);
    chmodSync(dir, 0o1777);
    const r = await serverRun(dir);
    assert.equal(r.code, 7, r.stderr);
    assert.ok(
      r.stderr.includes(
        `error: data directory ${dir} is writable by every user (mode 01777): anyone could have planted files in it; give this process its own --data-dir`,
      ),
      r.stderr,
    );
    assert.deepEqual(readdirSync(dir), []);
  });
});

describe('agent start after a crash', () => {
  let server: ServerProcess;
  let agent: AgentProcess;
  const others: AgentProcess[] = [];

  before(async () => {
    server = await startServer();
    const admin = adminClients(server.adminSocket);
    agent = await startAgent(server, { joinToken: (await joinToken(admin)).token });
  });
  after(async () => {
    for (const a of others) await a.kill();
    await agent?.stop();
    await server?.stop();
  });

  /** An agent (a new join token) started on `socketPath` that must refuse to start: exit 7. */
  async function refusedAt(socketPath: string): Promise<AgentProcess> {
    const admin = adminClients(server.adminSocket);
    const a = await startAgent(server, {
      joinToken: (await joinToken(admin)).token,
      socketPath,
      ready: false,
    });
    others.push(a);
    assert.equal(await a.exited(), 7, a.output());
    return a;
  }

  it('removes the temp files of its interrupted state writes, nothing else; tightens 0750 to 0700', async () => {
    assert.equal(await agent.stop(), 0, agent.output());
    const data = agent.dataDir;
    const keyFile = path.join(data, 'agent-svid.key');
    assert.ok(existsSync(keyFile), agent.output());
    const orphans = [
      '.agent-svid.key.tmp-0123456789ab',
      '.agent-svid.pem.tmp-0123456789ab',
      '.bundle.pem.tmp-0123456789ab',
      '.sync-state.json.tmp-0123456789ab',
    ].map((n) => path.join(data, n));
    const outside = path.join(root, 'agent-outside');
    mkdirSync(outside);
    const kept = [
      path.join(data, '.agent-svid.key.tmp-0123456789a'),
      path.join(data, '.agent-svid.key.tmp-0123456789ab~'),
      path.join(data, '.bootstrap-bundle.pem.tmp-0123456789ab'), // not a file the agent writes
      path.join(outside, '.agent-svid.key.tmp-0123456789ab'),
    ];
    for (const f of [...orphans, ...kept]) plant(f, keyFile);
    chmodSync(data, 0o750);

    await agent.restart(['--trust-bundle', agent.bundleFile]);
    for (const f of orphans) assert.equal(existsSync(f), false, `${f} removed`);
    for (const f of kept) assert.equal(existsSync(f), true, `${f} kept`);
    const out = agent.output();
    for (const f of orphans) {
      assert.ok(
        out.includes(`removed ${f}, left by a write that a crash or kill interrupted`),
        out,
      );
    }
    assert.equal(modeOf(data), 0o700);
    assert.ok(
      out.includes(`data directory ${data} had mode 0750, open to other users: tightened to 0700`),
      out,
    );
  });

  it('refuses a data directory owned by another uid: exit 7 naming it', async () => {
    const dir = path.join(root, 'theirs-agent');
    mkdirSync(dir);
    chownSync(dir, OTHER, OTHER);
    chmodSync(dir, 0o700);
    const r = await runCli([
      'agent',
      'run',
      '--server',
      server.apiAddr,
      '--trust-domain',
      server.trustDomain,
      '--data-dir',
      dir,
      '--workload-socket',
      path.join(root, 'unused', 'api.sock'),
      '--join-token',
      'unused',
      '--insecure-bootstrap',
    ]);
    assert.equal(r.code, 7, r.stderr);
    assert.ok(
      r.stderr.includes(
        `error: data directory ${dir} is owned by uid ${OTHER} (mode 0700), not by this process (uid ${UID})`,
      ),
      r.stderr,
    );
    assert.equal(existsSync(path.join(dir, 'lock')), false);
  });

  it('refuses a socket directory another user pre-created (the /tmp/tessera-agent case), naming it', async () => {
    // A sticky, world-writable directory standing in for /tmp, where another user made
    // tessera-agent/ before the agent's first start.
    const tmp = path.join(root, 'tmp');
    mkdirSync(tmp);
    chmodSync(tmp, 0o1777);
    const planted = path.join(tmp, 'tessera-agent');
    mkdirSync(planted);
    chownSync(planted, OTHER, OTHER);
    chmodSync(planted, 0o777);
    const socketDir = path.join(planted, 'public');
    const a = await refusedAt(path.join(socketDir, 'api.sock'));
    assert.ok(
      a
        .output()
        .includes(
          `error: Workload API socket ${socketDir}/api.sock (--workload-socket, config socket_path): cannot listen: ` +
            `"${planted}" (above ${socketDir}) is owned by uid ${OTHER} (mode 0777), not by this agent (uid ${UID}) or root: ` +
            'its owner could replace the socket; remove it, or choose another socket path',
        ),
      a.output(),
    );
    assert.equal(existsSync(socketDir), false, 'nothing was created in it');
  });

  it('refuses an own socket directory writable by others, naming it', async () => {
    const socketDir = path.join(root, 'open-sock');
    mkdirSync(socketDir);
    chmodSync(socketDir, 0o777);
    const a = await refusedAt(path.join(socketDir, 'api.sock'));
    assert.ok(
      a
        .output()
        .includes(
          `cannot listen: socket directory "${socketDir}" is writable by other users (mode 0777, uid ${UID}, gid ${process.getgid?.() ?? 0}): ` +
            'they could replace the socket; remove their write permission, or choose another socket path',
        ),
      a.output(),
    );
    assert.equal(existsSync(path.join(socketDir, 'api.sock')), false);
  });
});
