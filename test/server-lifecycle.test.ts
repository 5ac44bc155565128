// Black box: a server process that cannot start stops at once and says why; one that can, owns
// its data directory and admin socket and stops cleanly on SIGTERM.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { runCli } from './helpers/cli-process.ts';
import { freePort, waitFor } from './helpers/ports.ts';
import { CLI, startServer } from './helpers/server-process.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'tessera-lifecycle-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Holds a TCP port until closed, so that a server cannot bind it. */
async function occupy(): Promise<{ port: number; close(): Promise<void> }> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
}

async function serverArgs(dir: string): Promise<Record<string, string>> {
  return {
    '--trust-domain': 'example.org',
    '--data-dir': dir,
    '--admin-socket': path.join(dir, 'admin.sock'),
    '--listen': `127.0.0.1:${await freePort()}`,
    '--health-listen': `127.0.0.1:${await freePort()}`,
    '--public-listen': `127.0.0.1:${await freePort()}`,
  };
}

const fresh = (name: string): string => {
  const dir = path.join(root, name);
  // Private, as a server makes it: a wider one would be tightened with a warning on stderr.
  mkdirSync(dir, { mode: 0o700 });
  return dir;
};

const argv = (flags: Record<string, string>) => ['server', 'run', ...Object.entries(flags).flat()];

describe('server start-up failures are clear and final', () => {
  for (const [flag, what] of [
    ['--listen', 'API listener'],
    ['--health-listen', 'health listener'],
    ['--public-listen', 'public listener'],
  ] as const) {
    it(`a taken ${flag} address stops the process, naming the ${what} and ${flag}`, async () => {
      const dir = path.join(root, flag.slice(2));
      const taken = await occupy();
      try {
        const flags = { ...(await serverArgs(dir)), [flag]: `127.0.0.1:${taken.port}` };
        const r = await runCli(argv(flags), { env: { TESSERA_LOG_LEVEL: 'warn' } });
        assert.equal(r.code, 6, r.stderr);
        assert.match(
          r.stderr,
          new RegExp(
            `^error: cannot open the ${what} on 127\\.0\\.0\\.1:${taken.port} \\(${flag}\\): ` +
              'the address is already in use \\(EADDRINUSE\\)$',
            'm',
          ),
        );
        // Nothing half-started is left behind: the same directory starts cleanly right after.
        const s = await startServer({ dataDir: dir });
        assert.equal(await s.stop(), 0, s.output());
      } finally {
        await taken.close();
      }
    });
  }
});

describe('a running server owns its data directory and admin socket', () => {
  it('refuses a second process on the directory or the socket; SIGTERM exits 0', async () => {
    const a = await startServer({ dataDir: fresh('a') });
    try {
      // A second server on the same data directory.
      const same = await runCli(argv(await serverArgs(a.dataDir)));
      assert.equal(same.code, 7, same.stderr);
      assert.ok(
        same.stderr.includes(
          `error: data directory ${a.dataDir} is in use by another Tessera process (pid ${a.proc.pid}): ` +
            'stop it first, or give this process its own --data-dir',
        ),
        same.stderr,
      );
      // An agent on it too (the lock is taken before anything else, attestation included).
      const agent = await runCli([
        'agent',
        'run',
        '--server',
        a.apiAddr,
        '--trust-domain',
        'example.org',
        '--data-dir',
        a.dataDir,
        '--socket',
        path.join(root, 'agent.sock'),
        '--join-token',
        'unused',
        '--insecure-bootstrap',
      ]);
      assert.equal(agent.code, 7, agent.stderr);
      assert.match(
        agent.stderr,
        new RegExp(`data directory ${a.dataDir} is in use .*pid ${a.proc.pid}`),
      );
      // Another server with its own directory but the first one's admin socket.
      const other = {
        ...(await serverArgs(path.join(root, 'b'))),
        '--admin-socket': a.adminSocket,
      };
      const sock = await runCli(argv(other));
      assert.equal(sock.code, 7, sock.stderr);
      assert.ok(
        sock.stderr.includes(
          `error: the admin socket ${a.adminSocket} is in use by a running server: stop that server, ` +
            'or give this one another --admin-socket',
        ),
        sock.stderr,
      );
      // The first server was not disturbed.
      const health = await runCli(['healthcheck', '--socket', a.adminSocket]);
      assert.equal(health.code, 0, health.stderr);
      assert.equal(health.stdout, 'ok\n');
    } finally {
      assert.equal(await a.stop(), 0, a.output());
    }
    assert.doesNotMatch(a.output(), /error/i);
  });

  it('replaces an admin socket file nobody listens on (left by kill -9)', async () => {
    const a = await startServer({ dataDir: fresh('c') });
    await a.kill();
    const b = await startServer({
      dataDir: fresh('d'),
      config: { admin_socket: a.adminSocket },
    });
    try {
      const health = await runCli(['healthcheck', '--socket', a.adminSocket]);
      assert.equal(health.code, 0, health.stderr);
    } finally {
      assert.equal(await b.stop(), 0, b.output());
    }
  });

  it('never deletes an admin socket path that is not a socket', async () => {
    const dir = fresh('f');
    const notASocket = path.join(dir, 'admin.sock');
    writeFileSync(notASocket, 'precious\n');
    const r = await runCli(argv(await serverArgs(dir)));
    assert.equal(r.code, 6, r.stderr);
    assert.equal(
      r.stderr,
      `error: cannot open the admin socket on ${notASocket} (--admin-socket): ` +
        `${notASocket} exists and is not a socket: not replacing it\n`,
    );
    assert.equal(readFileSync(notASocket, 'utf8'), 'precious\n');
  });

  it('starts without its X.509 authority key, not ready, saying what to do; prepare + activate fix it', async () => {
    const a = await startServer({ dataDir: fresh('e') });
    const shown = await runCli([
      'authority',
      'show',
      '--kind',
      'x509',
      '--output',
      'json',
      '--socket',
      a.adminSocket,
    ]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(await a.stop(), 0, a.output());
    const keyDir = path.join(a.dataDir, 'keys');
    const x509Key = readdirSync(keyDir).find((f) => f.startsWith('x509-'));
    assert.ok(x509Key);
    unlinkSync(path.join(keyDir, x509Key));
    // Started by hand: it does not become ready, which the helper waits for.
    const proc = spawn(
      process.execPath,
      [CLI, 'server', 'run', '--config', path.join(a.dataDir, 'server.yaml')],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const id = x509Key.slice('x509-'.length, -'.pem'.length);
      const expected =
        `the private key of the active x509 authority ${id} is missing from ${path.join(keyDir, x509Key)}: ` +
        'restore that file from a backup (and restart the server), or replace the authority: ' +
        '`tessera authority prepare --kind x509` then `tessera authority activate --kind x509`';
      await waitFor(() => out.includes(expected), 60_000);
      // It says it listens, not that it is ready (it is not, per /readyz).
      await waitFor(
        () =>
          out.includes(
            'tessera server listening, not ready (it cannot sign: see the error above; tessera healthcheck): api ',
          ),
        60_000,
      );
      assert.ok(!out.includes('tessera server ready'), out);
      let health = await runCli(['healthcheck', '--socket', a.adminSocket]);
      await waitFor(
        async () => {
          health = await runCli(['healthcheck', '--socket', a.adminSocket]);
          return health.code !== null && health.stderr.includes('not ready');
        },
        60_000,
        200,
      );
      assert.equal(health.code, 6, health.stderr);
      const readyz = await fetch(`http://${a.healthAddr}/readyz`);
      assert.equal(readyz.status, 503);
      assert.ok(((await readyz.json()) as { reason: string }).reason.includes(expected));
      for (const step of ['prepare', 'activate']) {
        const r = await runCli(['authority', step, '--kind', 'x509', '--socket', a.adminSocket]);
        assert.equal(r.code, 0, r.stderr);
      }
      await waitFor(
        async () => (await fetch(`http://${a.healthAddr}/readyz`)).status === 200,
        60_000,
      );
      const ok = await runCli(['healthcheck', '--socket', a.adminSocket]);
      assert.equal(ok.code, 0, ok.stderr);
    } finally {
      const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
      proc.kill('SIGTERM');
      assert.equal(await exited, 0, out);
    }
  });
});
