// Access end to end (issue 10, "Real components in tests"): a real server, a real agent and the
// real CLI; two workloads of different uids on one agent, each with its own entry; a server
// workload whose static-secret credential provider reads a secret put through the CLI; an allow
// policy for one of them only. The allowed one gets the credential over the socket (gRPC, the
// CLI) and over loopback HTTP (curl); the other is denied with the reason. Then the policy is
// deleted and the allowed one must be denied within 1 s of the delete's return (bounded polling
// by a child of its uid, timestamps compared). Finally the audit chain of a release, by
// correlation id.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { adminClients, entry } from './helpers/admin.ts';
import { startAgent, type AgentProcess } from './helpers/agent-process.ts';
import { runCli } from './helpers/cli-process.ts';
import { freePort, waitFor } from './helpers/ports.ts';
import { CLI, REPO, startServer, type ServerProcess } from './helpers/server-process.ts';

const ALLOWED_UID = 1500;
const DENIED_UID = 1501;
const ALLOWED = 'spiffe://example.org/app/allowed';
const DENIED = 'spiffe://example.org/app/denied';
const SECRET = 'pw-3f9a1c7e-not-for-logs';
const root = process.getuid?.() === 0;

describe(
  'access end to end',
  { skip: !root && 'needs root to run workloads as other uids' },
  () => {
    let server: ServerProcess;
    let agent: AgentProcess;
    let dir: string;
    let httpPort: number;
    const admin = (...args: string[]) =>
      runCli(args, { env: { TESSERA_ADMIN_SOCKET: server.adminSocket } });

    before(async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-access-e2e-'));
      server = await startServer({ config: { log_level: 'info' } });
      const token = await adminClients(server.adminSocket).agents.createJoinToken({});
      httpPort = await freePort();
      const config = path.join(dir, 'agent.yaml');
      writeFileSync(config, `credentials:\n  http_listen: "127.0.0.1:${httpPort}"\n`);
      agent = await startAgent(server, { joinToken: token.token, args: ['--config', config] });
      await adminClients(server.adminSocket).entries.batchCreateEntry({
        entries: [
          entry(ALLOWED, token.agentSpiffeId, [`unix:uid:${ALLOWED_UID}`]),
          entry(DENIED, token.agentSpiffeId, [`unix:uid:${DENIED_UID}`]),
        ],
      });
      // The secret goes in through stdin, never on a command line.
      const put = spawnSync(
        process.execPath,
        [CLI, 'secret', 'put', 'db-password', '--from-stdin'],
        {
          input: SECRET,
          env: { ...process.env, TESSERA_ADMIN_SOCKET: server.adminSocket },
          encoding: 'utf8',
        },
      );
      assert.equal(put.status, 0, put.stderr);
      const setup = [
        ['server-workload', 'create', '--name', 'db', '--host', '127.0.0.1', '--port', '5432'],
        ['credential-provider', 'create', '--name', 'db-static', '--type', 'static-secret'],
      ];
      setup[0]!.push('--protocol', 'postgres', '--present', 'postgres-password');
      setup[1]!.push(
        '--set',
        'secret=db-password',
        '--set',
        'format=username-password',
        '--set',
        'username=app',
      );
      for (const args of setup) {
        const r = await admin(...args);
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      }
      const policy = await admin(
        'access-policy',
        'create',
        '--name',
        'allowed-db',
        '--client',
        ALLOWED,
        '--server',
        'db',
        '--credential-provider',
        'db-static',
      );
      assert.equal(policy.code, 0, policy.stderr);
    });

    after(async () => {
      await agent?.stop();
      await server?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    /** `tessera credential get` as `uid`, until `done` says the answer is final (entries sync). */
    async function credentialGetAs(
      uid: number,
      done: (r: Finished) => boolean,
      ...extra: string[]
    ): Promise<Finished> {
      let r: Finished | undefined;
      await waitFor(() => {
        r = runAs(uid, [CLI, 'credential', 'get', '--server', 'db', ...extra], agent.socketPath);
        return done(r);
      }, 30_000).catch(() => assert.fail(`no final answer: ${JSON.stringify(r)}`));
      return r!;
    }

    it('releases the credential to the allowed workload over gRPC (CLI) and loopback HTTP (curl)', async () => {
      const r = await credentialGetAs(ALLOWED_UID, (x) => x.code === 0, '--output', 'json');
      const j = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.equal(j['spiffeId'], ALLOWED);
      assert.equal(j['serverWorkload'], 'db');
      assert.equal(j['password'], SECRET);
      assert.equal(j['present'], 'postgres-password');
      const curl = spawnSync(
        'curl',
        ['-s', '-H', 'Tessera-Credential: true', `http://127.0.0.1:${httpPort}/v1/credentials/db`],
        { uid: ALLOWED_UID, gid: ALLOWED_UID, encoding: 'utf8' },
      );
      const h = JSON.parse(curl.stdout) as Record<string, unknown>;
      assert.equal(h['password'], SECRET, curl.stdout);
      assert.equal(h['spiffe_id'], ALLOWED);
      // Without the header: refused, naming it.
      const bare = spawnSync(
        'curl',
        ['-s', '-w', '\n%{http_code}', `http://127.0.0.1:${httpPort}/v1/credentials/db`],
        { uid: ALLOWED_UID, gid: ALLOWED_UID, encoding: 'utf8' },
      );
      assert.match(bare.stdout, /Tessera-Credential: true[\s\S]*\n400$/);
    });

    it('denies the other workload, saying why, over both doors', async () => {
      const r = await credentialGetAs(DENIED_UID, (x) => /denied/.test(x.stderr));
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, /denied for spiffe:\/\/example\.org\/app\/denied: no-matching-policy/);
      assert.ok(!r.stderr.includes(SECRET) && !r.stdout.includes(SECRET));
      const curl = spawnSync(
        'curl',
        ['-s', '-w', '\n%{http_code}', '-H', 'Tessera-Credential: true'].concat(
          `http://127.0.0.1:${httpPort}/v1/credentials/db`,
        ),
        { uid: DENIED_UID, gid: DENIED_UID, encoding: 'utf8' },
      );
      assert.match(curl.stdout, /"reason":"no-matching-policy"[\s\S]*\n403$/);
      assert.ok(!curl.stdout.includes(SECRET));
    });

    it('shows the audit chain of a release by its correlation id', async () => {
      const r = await credentialGetAs(ALLOWED_UID, (x) => x.code === 0, '--output', 'json');
      const id = String((JSON.parse(r.stdout) as Record<string, unknown>)['correlationId']);
      const list = await admin('audit', 'list', '--correlation-id', id, '--output', 'json');
      assert.equal(list.code, 0, list.stderr);
      for (const kind of ['access.request', 'access.authorization', 'access.credential']) {
        assert.ok(list.stdout.includes(kind), `${kind} in ${list.stdout}`);
      }
      assert.ok(!list.stdout.includes(SECRET));
    });

    it('keeps serving a cached credential while the server is away; an uncached ask is Unavailable', async () => {
      const before = await credentialGetAs(ALLOWED_UID, (x) => x.code === 0, '--output', 'json');
      await server.stop();
      try {
        const cached = runAs(
          ALLOWED_UID,
          [CLI, 'credential', 'get', '--server', 'db'],
          agent.socketPath,
        );
        assert.equal(cached.code, 0, cached.stderr);
        assert.ok(cached.stdout.includes(SECRET));
        assert.ok(before.stdout.includes(SECRET));
        const away = runAs(
          DENIED_UID,
          [CLI, 'credential', 'get', '--server', 'db'],
          agent.socketPath,
        );
        assert.equal(away.code, 6, away.stderr);
        assert.match(away.stderr, /does not answer/);
        const curl = spawnSync(
          'curl',
          ['-s', '-w', '\n%{http_code}', '-H', 'Tessera-Credential: true'].concat(
            `http://127.0.0.1:${httpPort}/v1/credentials/db`,
          ),
          { uid: DENIED_UID, gid: DENIED_UID, encoding: 'utf8' },
        );
        assert.match(curl.stdout, /does not answer[\s\S]*\n503$/);
      } finally {
        await server.restart();
      }
    });

    it('denies the allowed workload within 1 s of the policy delete', async () => {
      const poll = spawn(
        process.execPath,
        [path.join(REPO, 'test/helpers/credential-poll-child.ts'), agent.socketPath, 'db', '10'],
        {
          uid: ALLOWED_UID,
          gid: ALLOWED_UID,
          env: { PATH: process.env['PATH'] ?? '', HOME: '/tmp' },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      const lines: string[] = [];
      let buf = '';
      poll.stdout.setEncoding('utf8');
      poll.stdout.on('data', (c: string) => {
        buf += c;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          lines.push(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
      try {
        await waitFor(() => lines.at(-1)?.includes(`allowed ${SECRET}`) === true, 30_000);
        const del = await admin('access-policy', 'delete', 'allowed-db');
        assert.equal(del.code, 0, del.stderr);
        const returned = Date.now();
        await waitFor(() => lines.some((l) => / denied /.test(l)), 10_000).catch(() =>
          assert.fail(`never denied: ${lines.join(' | ')}`),
        );
        const deniedAt = Number(lines.find((l) => / denied /.test(l))!.split(' ')[0]);
        const ms = deniedAt - returned;
        // Negative when the poller saw the denial before the CLI process had exited.
        console.log(`policy delete → denied: ${ms} ms`);
        assert.ok(ms <= 1000, `denied ${ms} ms after the delete returned (${lines.join(' | ')})`);
        assert.match(
          lines.find((l) => / denied /.test(l))!,
          /denied no-matching-policy$/,
        );
      } finally {
        await stop(poll);
      }
    });

    it('never wrote the secret to the agent or server logs', () => {
      assert.ok(!agent.output().includes(SECRET), 'agent log');
      assert.ok(!server.output().includes(SECRET), 'server log');
    });
  },
);

interface Finished {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs node with `args` as `uid` (its own gid), the agent socket as the Workload API. */
function runAs(uid: number, args: string[], socket: string): Finished {
  const r = spawnSync(process.execPath, [...args, '--workload-socket', socket], {
    uid,
    gid: uid,
    env: { PATH: process.env['PATH'] ?? '', HOME: '/tmp', TESSERA_LOG_LEVEL: 'silent' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function stop(p: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGTERM');
  });
}
