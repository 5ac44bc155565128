// The kernel's exact socket lookup (NETLINK_SOCK_DIAG) against real loopback connections of this
// process: each answer is checked against the socket's own descriptor (/proc/self/fd → inode) and
// against the /proc/net/tcp{,6} row the fallback would use; then the answer parser on crafted
// datagrams (strict lengths, sequence numbers, the exact 4-tuple).
import assert from 'node:assert/strict';
import { readFileSync, readlinkSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { endianness, networkInterfaces } from 'node:os';
import { after, describe, it } from 'node:test';
import { findRow, tableEndpoint, type TcpEndpoint } from './proc-net-tcp.ts';
import { findTcpSocket, parseAnswer, writeRequest } from './sock-diag.ts';

const uid = process.getuid?.() ?? 0;

interface Pair {
  readonly client: Socket;
  readonly accepted: Socket;
  /** The client socket's own ends: local (its address) and remote (the listener). */
  readonly local: TcpEndpoint;
  readonly remote: TcpEndpoint;
  readonly inode: string;
}

const servers: Server[] = [];
const sockets: Socket[] = [];
after(async () => {
  for (const s of sockets) s.destroy();
  for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
});

async function listen(host: string, o: { ipv6Only?: boolean } = {}): Promise<Server> {
  const server = createServer();
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host, ...o }, () => resolve());
  });
  return server;
}

/** A connection from this process to `server`, dialled at `host`. */
async function pair(server: Server, host: string): Promise<Pair> {
  const port = (server.address() as AddressInfo).port;
  const acceptedP = new Promise<Socket>((r) => server.once('connection', r));
  const client = connect(port, host);
  sockets.push(client);
  await new Promise<void>((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
  });
  const accepted = await acceptedP;
  sockets.push(accepted);
  // A test resets connections on purpose: the other end's ECONNRESET is expected.
  accepted.on('error', () => {});
  client.on('error', () => {});
  const fd = (client as unknown as { _handle: { fd: number } })._handle.fd;
  const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1];
  assert.ok(inode);
  return {
    client,
    accepted,
    local: { address: client.localAddress ?? '', port: client.localPort ?? 0 },
    remote: { address: client.remoteAddress ?? '', port: client.remotePort ?? 0 },
    inode,
  };
}

/** The row the /proc fallback finds for the same ends, in `table`. */
function procRow(table: 'tcp' | 'tcp6', local: TcpEndpoint, remote: TcpEndpoint) {
  return findRow(
    readFileSync(`/proc/net/${table}`, 'latin1'),
    tableEndpoint(local, table),
    tableEndpoint(remote, table),
  );
}

function ipv6Loopback(): boolean {
  return Object.values(networkInterfaces())
    .flat()
    .some((a) => a?.family === 'IPv6' && a.address === '::1');
}

describe('NETLINK_SOCK_DIAG exact lookup, real loopback connections', () => {
  it('finds an IPv4 client socket: its inode and uid, as /proc/net/tcp has them', async () => {
    const p = await pair(await listen('127.0.0.1'), '127.0.0.1');
    const a = findTcpSocket(p.local, p.remote);
    assert.deepEqual(a, { kind: 'found', row: { uid, inode: p.inode }, family: 4 });
    assert.deepEqual(procRow('tcp', p.local, p.remote), { uid, inode: p.inode });
    // The other end is another socket (the one the listener accepted), not this one.
    const ours = findTcpSocket(p.remote, p.local);
    assert.equal(ours.kind, 'found');
    assert.notEqual(ours.kind === 'found' && ours.row.inode, p.inode);
  });

  it('finds an IPv6 client socket (::1)', async (t) => {
    if (!ipv6Loopback()) return t.skip('no ::1 on this machine');
    const p = await pair(await listen('::1'), '::1');
    assert.deepEqual(findTcpSocket(p.local, p.remote), {
      kind: 'found',
      row: { uid, inode: p.inode },
      family: 6,
    });
    assert.deepEqual(procRow('tcp6', p.local, p.remote), { uid, inode: p.inode });
  });

  it('finds an IPv4 client of a dual-stack listener, as the listener sees it (::ffff:…)', async (t) => {
    if (!ipv6Loopback()) return t.skip('no IPv6 on this machine');
    const server = await listen('::', { ipv6Only: false });
    const p = await pair(server, '127.0.0.1');
    // The accepted socket names both ends as IPv4-mapped; the client socket is AF_INET.
    const client = { address: p.accepted.remoteAddress ?? '', port: p.accepted.remotePort ?? 0 };
    const ours = { address: p.accepted.localAddress ?? '', port: p.accepted.localPort ?? 0 };
    assert.match(client.address, /^::ffff:127\.0\.0\.1$/);
    assert.deepEqual(findTcpSocket(client, ours), {
      kind: 'found',
      row: { uid, inode: p.inode },
      family: 4,
    });
    assert.deepEqual(procRow('tcp', p.local, p.remote), { uid, inode: p.inode });
  });

  it('finds an IPv6 socket connected to an IPv4-mapped address (it sits in tcp6)', async (t) => {
    if (!ipv6Loopback()) return t.skip('no IPv6 on this machine');
    const server = await listen('::', { ipv6Only: false });
    const p = await pair(server, '::ffff:127.0.0.1');
    assert.match(p.local.address, /^::ffff:127\.0\.0\.1$/);
    assert.deepEqual(findTcpSocket(p.local, p.remote), {
      kind: 'found',
      row: { uid, inode: p.inode },
      family: 6,
    });
    assert.deepEqual(procRow('tcp6', p.local, p.remote), { uid, inode: p.inode });
    // Asked with plain IPv4 addresses: the same one socket (one hash holds both kinds).
    const plain = (e: TcpEndpoint) => ({ address: '127.0.0.1', port: e.port });
    assert.deepEqual(findTcpSocket(plain(p.local), plain(p.remote)), {
      kind: 'found',
      row: { uid, inode: p.inode },
      family: 6,
    });
  });

  it('finds a client connected to a non-loopback destination (the redirected lookup)', async (t) => {
    const addr = Object.values(networkInterfaces())
      .flat()
      .find((a) => a?.family === 'IPv4' && !a.internal)?.address;
    if (addr === undefined) return t.skip('no non-loopback IPv4 address on this machine');
    const p = await pair(await listen(addr), addr);
    assert.deepEqual(findTcpSocket(p.local, p.remote), {
      kind: 'found',
      row: { uid, inode: p.inode },
      family: 4,
    });
  });

  it('a reset connection is absent; so is a tuple that only a listener matches', async () => {
    const server = await listen('127.0.0.1');
    const p = await pair(server, '127.0.0.1');
    assert.equal(findTcpSocket(p.local, p.remote).kind, 'found');
    const closed = new Promise((r) => p.client.once('close', r));
    p.client.resetAndDestroy(); // RST: no TIME_WAIT left behind
    await closed;
    assert.deepEqual(findTcpSocket(p.local, p.remote), { kind: 'absent' });
    // The kernel's lookup falls back to the listener on 127.0.0.1:port: not this 4-tuple.
    const listening = { address: '127.0.0.1', port: (server.address() as AddressInfo).port };
    assert.deepEqual(findTcpSocket(listening, { address: '127.0.0.1', port: 9 }), {
      kind: 'absent',
    });
    // A socket closed by its owner first lingers in TIME_WAIT: found, without an inode.
    const q = await pair(server, '127.0.0.1');
    const peerClosed = new Promise((r) => q.accepted.once('close', r));
    q.client.end();
    q.accepted.end();
    await peerClosed;
    const tw = findTcpSocket(q.local, q.remote);
    assert.equal(tw.kind, 'found');
    assert.equal(tw.kind === 'found' && tw.row.inode, '0');
  });
});

describe('NETLINK_SOCK_DIAG answers, strictly parsed', () => {
  const le = endianness() === 'LE';
  const local = { address: '127.0.0.1', port: 50000 };
  const remote = { address: '127.0.0.1', port: 8080 };
  const w32 = (b: Buffer, at: number, v: number) =>
    le ? b.writeUInt32LE(v, at) : b.writeUInt32BE(v, at);
  const w16 = (b: Buffer, at: number, v: number) =>
    le ? b.writeUInt16LE(v, at) : b.writeUInt16BE(v, at);

  /** A kernel answer: nlmsghdr + inet_diag_msg for local → remote (IPv4), uid 7, inode 4242. */
  function found(seq: number): Buffer {
    const b = Buffer.alloc(16 + 72 + 8); // + one attribute, as the kernel adds
    w32(b, 0, b.length);
    w16(b, 4, 20);
    w32(b, 8, seq);
    b[16] = 2; // AF_INET
    b[17] = 1; // ESTABLISHED
    b.writeUInt16BE(local.port, 20);
    b.writeUInt16BE(remote.port, 22);
    Buffer.from([127, 0, 0, 1]).copy(b, 24);
    Buffer.from([127, 0, 0, 1]).copy(b, 40);
    w32(b, 16 + 64, 7);
    w32(b, 16 + 68, 4242);
    return b;
  }

  function error(seq: number, errno: number): Buffer {
    const b = Buffer.alloc(16 + 4 + 16);
    w32(b, 0, b.length);
    w16(b, 4, 2);
    w32(b, 8, seq);
    if (le) b.writeInt32LE(-errno, 16);
    else b.writeInt32BE(-errno, 16);
    return b;
  }

  it('writes the request the kernel expects', () => {
    const b = Buffer.alloc(72);
    assert.equal(writeRequest(b, 5, 2, local, remote), 72);
    assert.equal(le ? b.readUInt16LE(4) : b.readUInt16BE(4), 20); // SOCK_DIAG_BY_FAMILY
    assert.equal(le ? b.readUInt16LE(6) : b.readUInt16BE(6), 1); // NLM_F_REQUEST, no NLM_F_DUMP
    assert.deepEqual([...b.subarray(16, 20)], [2, 6, 0, 0]); // AF_INET, IPPROTO_TCP, ext 0
    assert.equal(b.readUInt16BE(24), 50000);
    assert.equal(b.readUInt16BE(26), 8080);
    assert.deepEqual([...b.subarray(28, 32)], [127, 0, 0, 1]);
    assert.deepEqual([...b.subarray(44, 48)], [127, 0, 0, 1]);
    assert.equal(b.readUInt32BE(64), 0xffffffff); // INET_DIAG_NOCOOKIE, both words
    assert.equal(b.readUInt32BE(68), 0xffffffff);
  });

  it('takes a matching answer, ENOENT as absent, and skips stale ones', () => {
    const b = found(9);
    assert.deepEqual(parseAnswer(b, b.length, 9, local, remote), {
      kind: 'found',
      row: { uid: 7, inode: '4242' },
      family: 4,
    });
    assert.equal(parseAnswer(b, b.length, 10, local, remote), 'stale');
    const e = error(3, 2);
    assert.deepEqual(parseAnswer(e, e.length, 3, local, remote), { kind: 'absent' });
    // Another 4-tuple in the answer (a listener the lookup fell back to): no match.
    assert.deepEqual(parseAnswer(b, b.length, 9, { ...local, port: 50001 }, remote), {
      kind: 'absent',
    });
    assert.deepEqual(parseAnswer(b, b.length, 9, local, { address: '127.0.0.2', port: 8080 }), {
      kind: 'absent',
    });
  });

  it('refuses cut, short, mislabelled or over-long answers and other errors', () => {
    const b = found(1);
    assert.throws(() => parseAnswer(b, b.length + 1, 1, local, remote), /was cut/);
    assert.throws(() => parseAnswer(b, 10, 1, local, remote), /too short/);
    assert.throws(() => parseAnswer(b, 60, 1, local, remote), /bad length/); // len > received
    const long = Buffer.from(b);
    w32(long, 0, 4096); // a length beyond the buffer
    assert.throws(() => parseAnswer(long, long.length, 1, local, remote), /bad length/);
    const short = Buffer.from(b);
    w32(short, 0, 40);
    assert.throws(() => parseAnswer(short, short.length, 1, local, remote), /too short/);
    const done = Buffer.from(b);
    w16(done, 4, 3); // NLMSG_DONE
    assert.throws(() => parseAnswer(done, done.length, 1, local, remote), /unexpected type 3/);
    const family = Buffer.from(b);
    family[16] = 1;
    assert.throws(() => parseAnswer(family, family.length, 1, local, remote), /family 1/);
    const e = error(1, 22);
    assert.throws(() => parseAnswer(e, e.length, 1, local, remote), /refused .*errno 22/);
    const ack = error(1, 0);
    assert.throws(() => parseAnswer(ack, ack.length, 1, local, remote), /errno 0/);
  });
});
