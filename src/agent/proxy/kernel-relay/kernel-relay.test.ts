// The kernel relay against real loopback TCP connections: bytes spliced both ways arrive whole
// and in order without coming up to user space, a side's end reaches the other only after its
// last bytes, the client's own socket sends straight to the upstream, a target that stops
// reading holds the sender back instead of the kernel queueing without limit, and what cannot
// be spliced (a full map, TLS, buffered bytes) is refused with nothing changed. Needs root
// (CAP_BPF, CAP_NET_ADMIN): skipped, saying so, without it.
//
// Volumes that must stay in the kernel are below BACKLOG_BYTES: however slowly the reading side
// is scheduled, no more than that can wait for it, so the direction is never taken out.
import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import net, { type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { relay } from '../relay.ts';
import { fstatSync } from 'node:fs';
import { pidfdOpen, socketFd } from '../../attestation/peer-credentials.ts';
import { BACKLOG_BYTES, KernelRelay, type SpliceClient } from './kernel-relay.ts';
import { sendKey } from './client-socket.ts';
import { Sockmap } from './sockmap.ts';
import { tcpBytes } from './tcp-bytes.ts';

// Root may load it on every kernel this runs on (Linux ≥ 5.13): there, failing to is a failure,
// not a reason to skip (a malformed bpf attribute once turned it off silently).
const root = process.platform === 'linux' && process.getuid?.() === 0;
const opened = root ? KernelRelay.open(4) : { reason: 'not root (needs CAP_BPF, CAP_NET_ADMIN)' };
const under = Number(BACKLOG_BYTES) - 64 * 1024;
const skip = root ? false : 'kernel relay not tried: not root (needs CAP_BPF, CAP_NET_ADMIN)';
const kernel = 'relay' in opened ? opened.relay : undefined;

test('root loads the kernel relay', { skip }, () => {
  assert.ok(
    'relay' in opened,
    `KernelRelay.open failed: ${'reason' in opened ? opened.reason : ''}`,
  );
});

/** Two connected pairs: client ⇄ a (accepted), b ⇄ server (accepted): a and b are the proxy's. */
async function pairs(): Promise<{ client: Socket; a: Socket; b: Socket; server: Socket }> {
  const accept = async (): Promise<[Socket, Socket]> => {
    const srv = net.createServer({ allowHalfOpen: true });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const accepted = new Promise<Socket>((r) => srv.once('connection', r));
    const c = net.connect({
      port: (srv.address() as net.AddressInfo).port,
      host: '127.0.0.1',
      allowHalfOpen: true,
    });
    await new Promise((r) => c.once('connect', r));
    const s = await accepted;
    srv.close();
    return [c, s];
  };
  const [client, a] = await accept();
  const [b, server] = await accept();
  made.push(client, a, b, server);
  return { client, a, b, server };
}

/** Every socket pairs() made: destroyed at the end, so a failed test cannot keep the file running. */
const made: Socket[] = [];

function sink(s: Socket): Promise<{ sha256: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  s.on('data', (d: Buffer) => {
    h.update(d);
    bytes += d.length;
  });
  return new Promise((resolve) => s.once('end', () => resolve({ sha256: h.digest('hex'), bytes })));
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

after(() => {
  for (const s of made) s.destroy();
  kernel?.close();
});

/** A pair spliced both ways (the client's own socket sending, if asked), relayed. */
async function splicedBothWays(clientSends = false) {
  const p = await pairs();
  const splice = kernel!.splice(
    [
      [p.a, p.b],
      [p.b, p.a],
    ],
    clientSends ? clientOf(p) : undefined,
  );
  assert.ok(splice, 'plain TCP sockets with nothing buffered are spliced');
  if (clientSends) assert.ok(splice.clientSends, 'the client socket was taken into the send maps');
  return { ...p, done: relay(p.a, p.b, new AbortController().signal, splice) };
}

test(
  'spliced both ways: megabytes arrive whole and in order, none through user space; ends follow the last byte',
  { skip },
  async () => {
    const { client, a, b, server, done } = await splicedBothWays();
    const up = randomBytes(under);
    const down = randomBytes(under - 17);
    const atServer = sink(server);
    const atClient = sink(client);
    // Written in uneven pieces, then half-closed at once: the end must not overtake the bytes.
    for (let i = 0; i < up.length; i += 100_003) client.write(up.subarray(i, i + 100_003));
    client.end();
    server.write(down);
    server.end();
    assert.deepEqual(await atServer, { sha256: sha(up), bytes: up.length });
    assert.deepEqual(await atClient, { sha256: sha(down), bytes: down.length });
    await done;
    assert.equal(a.bytesRead, 0, 'no byte from the client came up to user space');
    assert.equal(b.bytesRead, 0, 'no byte from the server came up to user space');
  },
);

test(
  'one direction spliced: the other stays in user space; a slow reader loses nothing',
  { skip },
  async () => {
    const { client, a, b, server } = await pairs();
    const splice = kernel!.splice([[b, a]]);
    assert.ok(splice);
    const done = relay(a, b, new AbortController().signal, splice);
    const up = randomBytes(300_000);
    const down = randomBytes(under);
    const atServer = sink(server);
    client.write(up);
    client.end();
    server.end(down);
    // The client reads only after the server has finished writing: the kernel must hold back.
    await new Promise((r) => server.once('finish', r));
    const atClient = sink(client);
    assert.deepEqual(await atClient, { sha256: sha(down), bytes: down.length });
    assert.deepEqual(await atServer, { sha256: sha(up), bytes: up.length });
    await done;
    assert.equal(b.bytesRead, 0);
    assert.equal(a.bytesRead, up.length, 'the unspliced direction is relayed by user space');
  },
);

/** The client socket of `p` as the proxy finds it (this process holds it: a test is its own workload). */
function clientOf(p: { client: Socket; a: Socket }): SpliceClient {
  const fd = socketFd(p.client);
  const pidfd = pidfdOpen(process.pid);
  assert.ok(pidfd !== undefined, 'pidfd_open');
  return { accepted: p.a, socket: { pidfd, fd, inode: String(fstatSync(fd).ino) } };
}

/** Resolves once `cond` holds, checking every 10 ms for at most `ms`. */
async function until(cond: () => boolean, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !cond();) {
    assert.ok(Date.now() < end, 'condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resolves once `value` has stopped changing for 300 ms (for at most 30 s). */
async function steady(value: () => number): Promise<void> {
  for (let last = -1, tries = 0; value() !== last && tries < 100; tries++) {
    last = value();
    await new Promise((r) => setTimeout(r, 300));
  }
}

test(
  "the client's own socket sends straight to the upstream: nothing crosses to the agent's end",
  { skip },
  async () => {
    const { client, a, b, server, done } = await splicedBothWays(true);
    const up = randomBytes(5 * 1024 * 1024 + 3);
    const down = randomBytes(under);
    const atServer = sink(server);
    const atClient = sink(client);
    let reached = 0;
    server.on('data', (d: Buffer) => (reached += d.length));
    // Each slice once the previous one arrived: the upstream never holds more than one slice, so
    // however late this process is scheduled the client is never taken out of the send maps
    // for a backlog (the case of the test "an upstream that stops reading").
    for (let i = 0; i < up.length; i += 262_147) {
      client.write(up.subarray(i, i + 262_147));
      await until(() => reached === Math.min(up.length, i + 262_147));
    }
    assert.equal(tcpBytes(socketFd(a)).received, 0n, "no byte reached the agent's end");
    client.end();
    server.end(down);
    assert.deepEqual(await atServer, { sha256: sha(up), bytes: up.length });
    assert.deepEqual(await atClient, { sha256: sha(down), bytes: down.length });
    await done;
    assert.equal(a.bytesRead, 0);
    assert.equal(b.bytesRead, 0);
  },
);

test('released: the client socket sends the normal way again', { skip }, async () => {
  const p = await pairs();
  const splice = kernel!.splice([[p.a, p.b]], clientOf(p));
  assert.ok(splice?.clientSends);
  splice.release();
  const got = new Promise<Buffer>((r) => p.a.once('data', r));
  p.client.write('after release');
  assert.equal((await got).toString(), 'after release');
  for (const s of Object.values(p)) s.destroy();
});

test(
  'a send key names one socket: a second is refused, the first keeps its route',
  { skip },
  async () => {
    // Two client sockets can share a local address (SO_REUSEADDR, other peers): the same key.
    const map = Sockmap.open(4);
    try {
      const p1 = await pairs();
      const p2 = await pairs();
      const key = sendKey(socketFd(p1.client));
      map.routeSends(socketFd(p1.client), key, socketFd(p1.b));
      assert.throws(
        () => map.routeSends(socketFd(p2.client), key, socketFd(p2.b)),
        /spliced already/,
      );
      const at1 = new Promise<Buffer>((r) => p1.server.once('data', r));
      p1.client.write('first');
      assert.equal((await at1).toString(), 'first');
      assert.equal(tcpBytes(socketFd(p1.a)).received, 0n, 'still straight to its own upstream');
      // Taken out only while the entries hold the sockets they were made for.
      map.unrouteSends(key, map.cookie(socketFd(p2.client)), map.cookie(socketFd(p2.b)));
      const again = new Promise<Buffer>((r) => p1.server.once('data', r));
      p1.client.write('still');
      assert.equal((await again).toString(), 'still');
      for (const p of [p1, p2]) for (const x of Object.values(p)) x.destroy();
    } finally {
      map.close();
    }
  },
);

test(
  "the program counts what it redirects per socket and in all (the watch timer's one lookup)",
  { skip },
  async () => {
    const map = Sockmap.open(4);
    try {
      const p = await pairs();
      const key = map.cookie(socketFd(p.a));
      map.route(socketFd(p.a), key, socketFd(p.b));
      assert.equal(map.totalRedirected(), 0n);
      const bytes = randomBytes(300_000);
      const atServer = sink(p.server);
      p.client.end(bytes);
      await until(() => p.server.bytesRead === bytes.length);
      assert.equal(map.redirected(key), BigInt(bytes.length));
      assert.equal(map.totalRedirected(), BigInt(bytes.length));
      p.b.end();
      assert.equal((await atServer).sha256, sha(bytes));
      for (const x of Object.values(p)) x.destroy();
    } finally {
      map.close();
    }
  },
);

test(
  'an upstream that stops reading: the client leaves the send maps and waits, nothing lost',
  { skip },
  async () => {
    const { client, a, server, done } = await splicedBothWays(true);
    server.pause();
    const up = randomBytes(64 * 1024 * 1024);
    client.end(up);
    // Out of the send maps, the client's bytes cross to the agent's end (relayed by user space),
    // where TCP holds the client back: most of them wait in the client's own buffer.
    await until(() => a.bytesRead > 0);
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(client.writableLength > 32 * 1024 * 1024, `${client.writableLength} still to send`);
    const atServer = sink(server);
    server.resume();
    assert.deepEqual(await atServer, { sha256: sha(up), bytes: up.length });
    server.end();
    await done;
  },
);

test(
  'a target that stops reading: the direction leaves the kernel instead of queueing without limit',
  { skip },
  async () => {
    const { client, server, done } = await splicedBothWays();
    client.pause();
    // 200 MiB in 1 MiB pieces, a couple of milliseconds apart: far faster than the client reads
    // (not at all), about as fast as a server on this machine sends.
    const down = randomBytes(200 * 1024 * 1024);
    for (let i = 0; i < down.length; i += 1024 * 1024) {
      server.write(down.subarray(i, i + 1024 * 1024));
      await new Promise((r) => setTimeout(r, 2));
    }
    server.end();
    // Taken out of the kernel once BACKLOG_BYTES wait for the client, and TCP holds the server
    // back: most of it waits in the server's own buffer (before, the kernel took all of it into
    // its memory). Looked at once nothing more is taken.
    await steady(() => server.writableLength);
    const taken = down.length - server.writableLength;
    assert.ok(taken < 100 * 1024 * 1024, `the kernel and the relay took ${taken} bytes`);
    const atClient = sink(client);
    client.resume();
    assert.deepEqual(await atClient, { sha256: sha(down), bytes: down.length });
    client.end();
    await done;
  },
);

test('a reset on one side ends both', { skip }, async () => {
  const { client, a, b, server } = await pairs();
  const splice = kernel!.splice([
    [a, b],
    [b, a],
  ]);
  const done = relay(a, b, new AbortController().signal, splice);
  server.on('error', () => {});
  client.on('error', () => {});
  client.resetAndDestroy();
  await done;
  assert.ok(a.destroyed && b.destroyed);
  // The server side sees the upstream socket go (its end, or a reset).
  await new Promise((r) => {
    server.once('end', r);
    server.once('error', r);
    server.resume();
  });
  server.destroy();
});

test(
  'refused with nothing changed: buffered bytes, a socket that is not plain TCP, a full map',
  { skip },
  async () => {
    const p1 = await pairs();
    // Bytes already read into user space would be overtaken by later ones: not spliced.
    p1.client.write('early');
    await new Promise((r) => p1.a.once('readable', r));
    assert.equal(
      kernel!.splice([
        [p1.a, p1.b],
        [p1.b, p1.a],
      ]),
      undefined,
    );
    const { Duplex } = await import('node:stream');
    assert.equal(kernel!.splice([[new Duplex(), p1.b]]), undefined, 'no file descriptor');
    // Room for 4 routes: a pair both ways (2) and one direction (1) leave one; a pair asking for
    // two gets its first and not its second: it is taken out again and relayed in user space.
    const p2 = await pairs();
    const p3 = await pairs();
    assert.ok(
      kernel!.splice([
        [p2.a, p2.b],
        [p2.b, p2.a],
      ]),
    );
    assert.ok(kernel!.splice([[p3.b, p3.a]]));
    const p4 = await pairs();
    assert.equal(
      kernel!.splice([
        [p4.a, p4.b],
        [p4.b, p4.a],
      ]),
      undefined,
    );
    const done = relay(p4.a, p4.b, new AbortController().signal);
    const got = sink(p4.server);
    p4.client.end('through user space');
    assert.equal((await got).bytes, 'through user space'.length);
    assert.equal(p4.a.bytesRead, 'through user space'.length, 'not spliced: read by user space');
    p4.server.end();
    await done;
    // The half-made splice was undone: its room is free again.
    const p5 = await pairs();
    assert.ok(kernel!.splice([[p5.b, p5.a]]));
    for (const p of [p1, p2, p3, p4, p5]) for (const s of Object.values(p)) s.destroy();
  },
);

before(() => {
  if (skip) console.log(`# ${skip}`);
});
