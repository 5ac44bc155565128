// The kernel relay against real loopback TCP connections: bytes spliced both ways arrive whole
// and in order without coming up to user space, a side's end reaches the other only after its
// last bytes, and what cannot be spliced (a full map, TLS, buffered bytes) is refused with
// nothing changed. Needs root (CAP_BPF, CAP_NET_ADMIN): skipped, saying so, without it.
import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import net, { type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { relay } from '../relay.ts';
import { KernelRelay } from './kernel-relay.ts';

// Root may load it on every kernel this runs on (Linux ≥ 5.13): there, failing to is a failure,
// not a reason to skip (a malformed bpf attribute once turned it off silently).
const root = process.platform === 'linux' && process.getuid?.() === 0;
const opened = root ? KernelRelay.open(4) : { reason: 'not root (needs CAP_BPF, CAP_NET_ADMIN)' };
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
  return { client, a, b, server };
}

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

after(() => kernel?.close());

test(
  'spliced both ways: megabytes arrive whole and in order, none through user space; ends follow the last byte',
  { skip },
  async () => {
    const { client, a, b, server } = await pairs();
    const splice = kernel!.splice([
      [a, b],
      [b, a],
    ]);
    assert.ok(splice, 'plain TCP sockets with nothing buffered are spliced');
    const done = relay(a, b, new AbortController().signal, splice);
    const up = randomBytes(6 * 1024 * 1024);
    const down = randomBytes(5 * 1024 * 1024 + 17);
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
    const down = randomBytes(4 * 1024 * 1024);
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
