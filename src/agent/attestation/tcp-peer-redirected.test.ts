// Redirected TCP callers (the proxy's transparent way in): the client's socket is connected to
// where it was going (the original destination), while the connection arrives at our loopback
// listener. Real client processes connect to a real destination; the socket handed to
// identifyTcpPeer reads as the transparent listener sees a REDIRECTed connection (its local end is
// the listener, its remote end the client) — only the NAT rewrite is left out, which the
// black-box test (test/proxy-transparent-agent.test.ts) does for real with iptables.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { after, describe, it } from 'node:test';
import type { ConnectionPeer } from './connection-peer.ts';
import { releaseConnection } from './connection-peer.ts';
import type { TcpEndpoint } from './proc-net-tcp.ts';
import { identifyTcpPeer } from './tcp-peer.ts';

const isRoot = process.getuid?.() === 0;
const LISTENER = { localAddress: '127.0.0.1', localPort: 15001 };

/** A destination on `host`, and a child process (of `uid`, as root) connected to it. */
async function connected(host: string, uid?: number) {
  const server: Server = createServer();
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  const dst: TcpEndpoint = { address: host, port: (server.address() as AddressInfo).port };
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '-e',
      `require('net').connect(${dst.port}, ${JSON.stringify(host)}).on('error', () => {});` +
        'setInterval(() => {}, 1000);',
    ],
    { stdio: 'ignore', ...(uid === undefined ? {} : { uid, gid: uid }) },
  );
  const socket = await accepted;
  // What the transparent listener sees: the client as the remote end, itself as the local end.
  const redirected = {
    remoteAddress: socket.remoteAddress,
    remotePort: socket.remotePort,
    ...LISTENER,
  } as Socket;
  return {
    dst,
    child,
    redirected,
    async close() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      socket.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The client's socket may not be in its fd table yet when accept returns: retried, bounded. */
async function identify(socket: Socket, dialled: TcpEndpoint): Promise<ConnectionPeer> {
  let peer: ConnectionPeer = { ok: false, reason: 'not tried' };
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    peer = await identifyTcpPeer(socket, {}, dialled);
    if (peer.ok || !/no process holds/.test(peer.reason)) return peer;
    await new Promise((r) => setTimeout(r, 20));
  }
  return peer;
}

describe('redirected TCP callers (client → original destination in /proc/net/tcp)', () => {
  const closers: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of closers) await c();
  });

  it('finds the client by its row to the original destination', async () => {
    const c = await connected('127.0.0.1');
    closers.push(c.close);
    const peer = await identify(c.redirected, c.dst);
    assert.ok(peer.ok, peer.ok ? '' : peer.reason);
    assert.equal(peer.caller.pid, c.child.pid);
    assert.equal(peer.transport, 'tcp');
    releaseConnection(peer);
  });

  it('identifies a client of another uid on a non-loopback address', async (t) => {
    if (!isRoot) return t.skip('needs root to spawn a process as another uid');
    const addr = Object.values(networkInterfaces())
      .flat()
      .find((a) => a?.family === 'IPv4' && !a.internal)?.address;
    if (addr === undefined) return t.skip('no non-loopback IPv4 address on this machine');
    const c = await connected(addr, 65534);
    closers.push(c.close);
    const peer = await identify(c.redirected, c.dst);
    assert.ok(peer.ok, peer.ok ? '' : peer.reason);
    assert.deepEqual(peer.caller, { pid: c.child.pid, uid: 65534, gid: 65534 });
    releaseConnection(peer);
    // Without the original destination it is what it looks like: not loopback, refused.
    const plain = await identifyTcpPeer(c.redirected);
    assert.equal(plain.ok, false);
    assert.match(plain.ok ? '' : plain.reason, /not a loopback connection/);
  });

  it('refuses a destination the client is not connected to', async () => {
    const c = await connected('127.0.0.1');
    closers.push(c.close);
    assert.ok((await identify(c.redirected, c.dst)).ok);
    const wrong = await identifyTcpPeer(c.redirected, {}, { ...c.dst, port: c.dst.port + 1 });
    assert.equal(wrong.ok, false);
    assert.match(wrong.ok ? '' : wrong.reason, /not in the socket table/);
  });

  it('refuses a connection not accepted on loopback, whatever the destination', async () => {
    const c = await connected('127.0.0.1');
    closers.push(c.close);
    const elsewhere = { ...c.redirected, localAddress: '10.0.0.1' } as Socket;
    const peer = await identifyTcpPeer(elsewhere, {}, c.dst);
    assert.equal(peer.ok, false);
    assert.match(peer.ok ? '' : peer.reason, /not a loopback connection/);
  });
});
