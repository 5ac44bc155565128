// The socket file: parent directory created 0755, socket 0777 (every local user may connect;
// callers are identified out of band), stale sockets replaced, live ones and other files kept.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { FailedPreconditionError, InvalidArgumentError } from '../../core/errors.ts';
import { startWorkloadApi } from './server.ts';
import { makePki, sleep, staticAttestation } from './testing/fixtures.ts';

describe('socket file', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-sockfile-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the parent directory 0755 and makes the socket 0777', async () => {
    const { source } = await makePki(async () => []);
    const attestation = staticAttestation(source);
    const socketPath = path.join(dir, 'a', 'b', 'agent.sock');
    const old = process.umask(0o077); // a strict umask must not leak into the modes
    try {
      const api = await startWorkloadApi({ socketPath, source, attestation });
      assert.equal(statSync(path.dirname(socketPath)).mode & 0o777, 0o755);
      assert.ok(statSync(socketPath).isSocket());
      assert.equal(statSync(socketPath).mode & 0o777, 0o777);
      await api.close();
      assert.equal(existsSync(socketPath), false, 'close() removes the socket');
    } finally {
      process.umask(old);
    }
  });

  it('replaces a stale socket, refuses a live one and a non-socket file', async () => {
    const { source } = await makePki(async () => []);
    const attestation = staticAttestation(source);
    const socketPath = path.join(dir, 'stale.sock');
    // A process that dies without cleaning up leaves a stale socket file behind.
    const code = `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`;
    const child = spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
    await new Promise((r) => child.once('exit', r));
    assert.ok(statSync(socketPath).isSocket());
    const api = await startWorkloadApi({ socketPath, source, attestation });
    await assert.rejects(
      startWorkloadApi({ socketPath, source, attestation }),
      FailedPreconditionError,
    );
    assert.ok(existsSync(socketPath), 'the live socket was left alone');
    await api.close();

    const file = path.join(dir, 'not-a-socket');
    writeFileSync(file, 'keep me');
    await assert.rejects(
      startWorkloadApi({ socketPath: file, source, attestation }),
      /not a socket/,
    );
    assert.ok(existsSync(file));
    await assert.rejects(
      startWorkloadApi({ socketPath: 'relative.sock', source, attestation }),
      InvalidArgumentError,
    );
    await assert.rejects(
      startWorkloadApi({ socketPath: '/' + 'x'.repeat(200), source, attestation }),
      /longer than 107 bytes/,
    );
  });

  it('close() is idempotent and completes with a client still connected', async () => {
    const { source } = await makePki(async () => []);
    const attestation = staticAttestation(source);
    const socketPath = path.join(dir, 'idem.sock');
    const api = await startWorkloadApi({ socketPath, source, attestation });
    const net = await import('node:net');
    const s = net.connect(socketPath);
    s.on('error', () => {});
    await sleep(20);
    const started = Date.now();
    await Promise.all([api.close(), api.close()]);
    assert.ok(Date.now() - started < 3000);
    s.destroy();
  });
});
