// The kernel's file iterator as socket-owner lookup: it opens where the agent runs as root on a
// kernel with BTF, gives the /proc walk's answers for real sockets (one holder, a socket shared
// with a child), never answers with a file that is not a socket, leaves a failed pass to the /proc
// walk, and refuses to run where the kernel's task ids are not the agent's (another pid
// namespace).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readlinkSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { kernelSocketHolders, type KernelSocketHolders } from './kernel-socket-holders.ts';
import { socketHolders } from './socket-owner.ts';

const run = promisify(execFile);
const expected = process.getuid?.() === 0 && existsSync('/sys/kernel/btf/vmlinux');

describe("socket holders from the kernel's file iterator", () => {
  let kernel: KernelSocketHolders | undefined;
  let server: Server;
  let client: Socket;
  before(async () => {
    const k = await kernelSocketHolders();
    if (!('reason' in k)) kernel = k;
    server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    client = connect((server.address() as { port: number }).port, '127.0.0.1');
    await new Promise((r) => client.once('connect', r));
  });
  after(() => {
    client.destroy();
    server.close();
  });
  const need = (t: TestContext): KernelSocketHolders | undefined => {
    if (!kernel) t.skip('no kernel iterator here (not root, or no kernel BTF)');
    return kernel;
  };

  it('opens as root on a kernel with BTF', async () => {
    const k = await kernelSocketHolders();
    if (expected) assert.ok(!('reason' in k), 'reason' in k ? k.reason : '');
  });

  it('answers as the /proc walk does for every socket this process holds', async (t) => {
    const k = need(t);
    if (!k) return;
    const sockets = readdirSync('/proc/self/fd')
      .map((fd) => {
        try {
          return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1];
        } catch {
          return undefined; // the directory's own descriptor, closed by now
        }
      })
      .filter((i): i is string => i !== undefined);
    assert.ok(sockets.length >= 2, `${sockets.length} sockets`);
    for (const inode of new Set(sockets)) {
      const fromKernel = await k.holders(inode);
      const walked = await socketHolders(inode);
      assert.deepEqual(
        [...new Set(fromKernel.map((h) => h.pid))],
        walked.map((h) => h.pid),
        `socket ${inode}`,
      );
      for (const h of fromKernel) {
        assert.equal(readlinkSync(`/proc/${h.pid}/fd/${h.fd}`), `socket:[${inode}]`);
      }
    }
  });

  it('finds both processes when a child inherited the socket', async (t) => {
    const k = need(t);
    if (!k) return;
    const fd = (client as unknown as { _handle: { fd: number } })._handle.fd;
    const inode = String(fstatSync(fd).ino);
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
      stdio: ['ignore', 'ignore', 'ignore', fd],
    });
    try {
      const holds = () => readlinkSync(`/proc/${child.pid}/fd/3`) === `socket:[${inode}]`;
      for (let i = 0; i < 500 && !safe(holds); i++) await new Promise((r) => setTimeout(r, 10));
      const pids = (await k.holders(inode)).map((h) => h.pid).sort((a, b) => a - b);
      assert.deepEqual(
        pids,
        [process.pid, child.pid!].sort((a, b) => a - b),
      );
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('never names a file that is not a socket, whatever its inode number', async (t) => {
    const k = need(t);
    if (!k) return;
    const fd = openSync(import.meta.filename, 'r');
    try {
      const found = await k.holders(String(fstatSync(fd).ino));
      assert.ok(!found.some((h) => h.pid === process.pid && h.fd === fd), JSON.stringify(found));
    } finally {
      closeSync(fd);
    }
  });

  it('a pass that fails is answered by the /proc walk instead', async () => {
    const failing: KernelSocketHolders = { holders: () => Promise.reject(new Error('ENOMEM')) };
    const fd = (client as unknown as { _handle: { fd: number } })._handle.fd;
    const found = await socketHolders(String(fstatSync(fd).ino), { kernel: failing });
    assert.deepEqual(found, [{ pid: process.pid, fd }]);
  });

  it("is refused in another pid namespace (the kernel's task ids are not the agent's)", async (t) => {
    if (!need(t)) return;
    const module = path.join(import.meta.dirname, 'kernel-socket-holders.ts');
    const script = `const m = await import(${JSON.stringify(module)});
      const k = await m.kernelSocketHolders();
      console.log('reason' in k ? k.reason : 'opened');`;
    const { stdout } = await run('unshare', [
      '--pid',
      '--fork',
      '--mount-proc',
      process.execPath,
      '--input-type=module',
      '-e',
      script,
    ]);
    assert.match(stdout, /the kernel's task ids are not this process's/);
  });
});

function safe(f: () => boolean): boolean {
  try {
    return f();
  } catch {
    return false;
  }
}
