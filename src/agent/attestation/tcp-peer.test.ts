// Loopback TCP callers: real processes of different uids connect over 127.0.0.1 and ::1 to a test
// HTTP listener that identifies them with the attestation service; a socket shared with a child
// process is refused, as are non-loopback connections and walks past their bounds.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { after, describe, it, type TestContext } from 'node:test';
import { UnavailableError } from '../../core/errors.ts';
import type { Selector } from '../../core/selector.ts';
import { AttestationService } from './attestation-service.ts';
import type { CallerProcess, SelectorSource } from './caller.ts';
import type { ConnectionPeer } from './connection-peer.ts';
import { checkPin } from './process-pin.ts';
import { findRow, isLoopback, tableEndpoint } from './proc-net-tcp.ts';
import { kernelSocketHolders } from './kernel-socket-holders.ts';
import { socketHolders, UndecidableOwnerError } from './socket-owner.ts';
import { effectiveIds } from './tcp-peer.ts';
import type { TcpPeerOptions } from './tcp-peer.ts';

const isRoot = process.getuid?.() === 0;

/** Selectors from the kernel: the effective uid of the pid, as the unix attestor reports it. */
const kernelSelectors: SelectorSource = {
  async attest(caller: CallerProcess): Promise<Selector[]> {
    const { uid } = effectiveIds(readFileSync(`/proc/${caller.pid}/status`, 'latin1'));
    return [{ type: 'unix', value: `uid:${uid}` }];
  },
};

interface Answer {
  readonly ok: boolean;
  readonly pid?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly selectors?: string[];
  readonly reason?: string;
}

/**
 * An HTTP listener that answers each request with its caller as the service sees it. The
 * connection is identified at its first request (after the client wrote it), so a test can
 * share the socket with another process before the lookup.
 */
async function testListener(host: string, tcp: TcpPeerOptions = {}) {
  const svc = new AttestationService({
    selectors: kernelSelectors,
    entries: { match: () => [] },
    attestTimeoutMs: 10_000,
    tcp,
  });
  const peers = new WeakMap<Socket, Promise<ConnectionPeer>>();
  const server = http.createServer((req, res) => {
    const socket = req.socket;
    let peer = peers.get(socket);
    if (!peer) {
      peer = svc.identifyTcp(socket);
      peers.set(socket, peer);
      socket.once('close', () => void peer?.then((p) => svc.release(p)));
    }
    void peer
      .then(async (p): Promise<Answer> => {
        if (!p.ok) return { ok: false, reason: p.reason };
        const c = await svc.attest(p, new AbortController().signal);
        return {
          ok: true,
          pid: c.process.pid,
          uid: c.process.uid,
          gid: c.process.gid,
          selectors: c.selectors.map((s) => `${s.type}:${s.value}`),
        };
      })
      .catch((e: unknown): Answer => ({ ok: false, reason: (e as Error).message }))
      .then((a) => res.end(JSON.stringify(a)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    svc,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * A child process that GETs `url` and prints `{ pid, answer }`. With `share`, it first hands its
 * connected socket to a grandchild (fd 3, as a fork+exec inherits it) and waits until the
 * grandchild holds it, then sends the request on the shared connection.
 */
function client(
  url: string,
  o: { uid?: number; gid?: number; share?: { uid?: number; gid?: number } } = {},
): ChildProcess {
  const script = `
    const net = require('node:net');
    const fs = require('node:fs');
    const { spawn } = require('node:child_process');
    const u = new URL(${JSON.stringify(url)});
    const host = u.hostname.replace(/^\\[|\\]$/g, '');
    const share = ${JSON.stringify(o.share ?? null)};
    let g;
    const s = net.connect(Number(u.port), host, () => {
      const send = () => s.write('GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n');
      if (!share) return send();
      g = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
        stdio: ['ignore', 'ignore', 'ignore', s._handle.fd], ...share,
      });
      const deadline = Date.now() + 10000;
      const wait = () => {
        let held = false;
        try { held = fs.readlinkSync('/proc/' + g.pid + '/fd/3').startsWith('socket:'); } catch {}
        if (held) return send();
        if (Date.now() > deadline) { process.stdout.write('{"error":"grandchild never held it"}'); process.exit(1); }
        setTimeout(wait, 10);
      };
      wait();
      s.once('close', () => g.kill('SIGKILL'));
    });
    let body = '';
    s.on('data', (d) => (body += d));
    s.on('end', () => {
      if (g) g.kill('SIGKILL');
      process.stdout.write(JSON.stringify({ pid: process.pid, answer: JSON.parse(body.slice(body.indexOf('\\r\\n\\r\\n') + 4)) }), () => process.exit(0));
    });
    s.on('error', (e) => process.stdout.write(JSON.stringify({ error: e.message })));
  `;
  const { share: _share, ...ids } = o;
  return spawn(process.execPath, ['-e', script], {
    ...ids,
    cwd: '/',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function answerOf(child: ChildProcess): Promise<{ pid: number; answer: Answer }> {
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  // 'close', not 'exit': 'exit' may come before the child's last output has been read.
  await new Promise<void>((r) => child.once('close', () => r()));
  clearTimeout(timer);
  const parsed = JSON.parse(out || '{}') as { pid: number; answer: Answer; error?: string };
  assert.equal(parsed.error, undefined, `${parsed.error ?? ''} ${err}`);
  assert.ok(parsed.answer, `no answer: ${out} ${err}`);
  return parsed;
}

function ipv6Loopback(): boolean {
  return Object.values(networkInterfaces())
    .flat()
    .some((a) => a?.family === 'IPv6' && a.address === '::1');
}

async function identifiesEachUid(t: TestContext, tcp: TcpPeerOptions): Promise<void> {
  if (!isRoot) return t.skip('needs root to spawn processes as other uids');
  const l = await testListener('127.0.0.1', tcp);
  try {
    const [nobody, other, self] = await Promise.all([
      answerOf(client(l.url, { uid: 65534, gid: 65534 })),
      answerOf(client(l.url, { uid: 40001, gid: 40002 })),
      answerOf(client(l.url)),
    ]);
    assert.deepEqual(nobody.answer, {
      ok: true,
      pid: nobody.pid,
      uid: 65534,
      gid: 65534,
      selectors: ['unix:uid:65534'],
    });
    assert.deepEqual(other.answer, {
      ok: true,
      pid: other.pid,
      uid: 40001,
      gid: 40002,
      selectors: ['unix:uid:40001'],
    });
    assert.equal(self.answer.pid, self.pid);
    assert.equal(self.answer.uid, 0);
  } finally {
    await l.close();
  }
}

async function refusesShared(t: TestContext, tcp: TcpPeerOptions): Promise<void> {
  if (!isRoot) return t.skip('needs root to spawn processes as other uids');
  const l = await testListener('127.0.0.1', tcp);
  try {
    // Same uid, gid and executable (node): still two holders, refused.
    const same = await answerOf(client(l.url, { uid: 65534, gid: 65534, share: {} }));
    assert.equal(same.answer.ok, false);
    assert.match(same.answer.reason ?? '', /several processes hold the client socket/);
    assert.match(same.answer.reason ?? '', new RegExp(`\\b${same.pid}\\b`));
    // Handed to a child of another uid: refused.
    const other = await answerOf(client(l.url, { share: { uid: 65534, gid: 65534 } }));
    assert.equal(other.answer.ok, false);
    assert.match(other.answer.reason ?? '', /several processes hold the client socket/);
    // The same listener still identifies an unshared caller.
    const alone = await answerOf(client(l.url, { uid: 65534, gid: 65534 }));
    assert.equal(alone.answer.ok, true);
    assert.equal(alone.answer.pid, alone.pid);
  } finally {
    await l.close();
  }
}

describe('loopback TCP callers (NETLINK_SOCK_DIAG or /proc/net/tcp → inode → pid)', () => {
  const closers: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of closers) await c();
  });

  it('identifies processes of different uids over 127.0.0.1, each as itself', (t) =>
    identifiesEachUid(t, {}));

  it('identifies a caller over IPv6 loopback (::1)', async (t) => {
    if (!isRoot) return t.skip('needs root to spawn processes as other uids');
    if (!ipv6Loopback()) return t.skip('no ::1 on this machine');
    const l = await testListener('::1');
    closers.push(l.close);
    const r = await answerOf(client(l.url, { uid: 65534, gid: 65534 }));
    assert.deepEqual(r.answer, {
      ok: true,
      pid: r.pid,
      uid: 65534,
      gid: 65534,
      selectors: ['unix:uid:65534'],
    });
  });

  it('identifies the same way from the /proc/net tables alone (the fallback to netlink)', async () => {
    const l = await testListener('127.0.0.1', { sockDiag: false });
    closers.push(l.close);
    const r = await answerOf(client(l.url));
    assert.equal(r.answer.ok, true, r.answer.reason);
    assert.equal(r.answer.pid, r.pid);
  });

  it('refuses a connection shared with a forked child: same identity or another', (t) =>
    refusesShared(t, {}));

  it('refuses non-loopback connections', async (t) => {
    const addr = Object.values(networkInterfaces())
      .flat()
      .find((a) => a?.family === 'IPv4' && !a.internal)?.address;
    if (addr === undefined) return t.skip('no non-loopback IPv4 address on this machine');
    const l = await testListener(addr);
    closers.push(l.close);
    const r = await answerOf(client(l.url));
    assert.equal(r.answer.ok, false);
    assert.match(r.answer.reason ?? '', /not a loopback connection/);
  });

  it('refuses when the walk would pass its bounds (never a partial answer)', async () => {
    const l = await testListener('127.0.0.1', { maxProcesses: 1 });
    closers.push(l.close);
    const r = await answerOf(client(l.url));
    assert.equal(r.answer.ok, false);
    assert.match(r.answer.reason ?? '', /more than 1 processes to look at/);
    await assert.rejects(socketHolders('1', { maxDescriptors: 0 }), UndecidableOwnerError);
  });

  it('a caller that exits after being identified fails the pin: Unavailable', async () => {
    const l = await testListener('127.0.0.1');
    closers.push(l.close);
    const server = http.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    const accepted = new Promise<Socket>((r) => server.once('connection', r));
    const child = spawn(
      process.execPath,
      [
        '-e',
        `require('net').connect(${port}, '127.0.0.1').on('error', () => {}); setInterval(() => {}, 1000);`,
      ],
      { stdio: 'ignore' },
    );
    const socket = await accepted;
    // The client socket may not be in its fd table yet when accept returns: poll, bounded.
    let peer: ConnectionPeer = { ok: false, reason: 'not tried' };
    const deadline = Date.now() + 10_000;
    while (!peer.ok && Date.now() < deadline) {
      peer = await l.svc.identifyTcp(socket);
      if (!peer.ok) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(peer.ok, peer.ok ? '' : peer.reason);
    assert.equal(peer.caller.pid, child.pid);
    assert.equal(peer.transport, 'tcp');
    await l.svc.attest(peer, new AbortController().signal);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    // Unavailable either way: the attestor finds the process gone, or the pin check does.
    await assert.rejects(l.svc.attest(peer, new AbortController().signal), UnavailableError);
    assert.throws(() => checkPin(peer.pin), /could not verify existence of the original caller/);
    l.svc.release(peer);
    socket.destroy();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
});

describe("the same callers found by the kernel's file iterator instead of the /proc walk", () => {
  const kernel = async (t: TestContext): Promise<TcpPeerOptions | undefined> => {
    const k = await kernelSocketHolders();
    if ('reason' in k) {
      t.skip(`no kernel iterator here: ${k.reason}`);
      return undefined;
    }
    return { kernel: k };
  };

  it('identifies processes of different uids, each as itself', async (t) => {
    const tcp = await kernel(t);
    if (tcp) await identifiesEachUid(t, tcp);
  });

  it('refuses a connection shared with a forked child: same identity or another', async (t) => {
    const tcp = await kernel(t);
    if (tcp) await refusesShared(t, tcp);
  });
});

describe('socket tables', () => {
  it('prints endpoints as the kernel does (little-endian words)', (t) => {
    if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) return t.skip('big-endian host');
    assert.equal(tableEndpoint({ address: '127.0.0.1', port: 8080 }, 'tcp'), '0100007F:1F90');
    assert.equal(
      tableEndpoint({ address: '::1', port: 443 }, 'tcp6'),
      '00000000000000000000000001000000:01BB',
    );
    assert.equal(
      tableEndpoint({ address: '::ffff:127.0.0.1', port: 1 }, 'tcp6'),
      '0000000000000000FFFF00000100007F:0001',
    );
    assert.equal(
      tableEndpoint({ address: '127.0.0.1', port: 1 }, 'tcp6'),
      '0000000000000000FFFF00000100007F:0001',
    );
  });

  it('finds exactly one row; none, two or a malformed one is refused', () => {
    const head =
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
    const row = (local: string, rem: string, uid: number, inode: number) =>
      `   0: ${local} ${rem} 01 00000000:00000000 00:00000000 00000000 ${uid}        0 ${inode} 1 0000000000000000 20 4 30 10 -1\n`;
    const a = '0100007F:C350';
    const b = '0100007F:1F90';
    const table = head + row(b, a, 0, 111) + row(a, b, 65534, 222);
    assert.deepEqual(findRow(table, a, b), { uid: 65534, inode: '222' });
    assert.throws(() => findRow(table, a, '0100007F:0001'), /not in the socket table/);
    assert.throws(() => findRow(table + row(a, b, 1, 333), a, b), /ambiguous/);
    assert.throws(() => findRow(head + `   0: ${a} ${b} 01 x\n`, a, b), /malformed/);
  });

  it('loopback is 127/8, ::1 and ::ffff:127/104 only', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1'])
      assert.equal(isLoopback(a), true, a);
    for (const a of ['10.0.0.1', '::', '::2', '::ffff:10.0.0.1', 'fe80::1', 'localhost', ''])
      assert.equal(isLoopback(a), false, a);
  });

  it("reads the effective uid and gid from a process's status", () => {
    assert.deepEqual(effectiveIds('Name:\tx\nUid:\t0\t65534\t0\t65534\nGid:\t1\t2\t1\t2\n'), {
      uid: 65534,
      gid: 2,
    });
    assert.throws(() => effectiveIds('Name:\tx\n'), /malformed/);
  });
});
