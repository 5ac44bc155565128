// Hostile and sloppy clients: garbage bytes, half-open and silent connections, and thousands of
// connect/disconnect cycles must leave the server up, serving, and without leaked descriptors
// (each connection holds a socket and, where the kernel has SO_PEERPIDFD, a pidfd).
// Every loop here is bounded in count and in time.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  TD,
  makePki,
  openFdCount,
  openStream,
  sleep,
  startOnTempSocket,
  unary,
  workloadClient,
  type Pki,
  type Running,
} from './testing/fixtures.ts';

const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
const IDLE_MS = 300;

/** Resolves true when the server closes the connection within `ms`. */
function closedByServer(socket: net.Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    socket.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
    socket.on('error', () => {});
    socket.resume(); // drain whatever the server sends (SETTINGS, GOAWAY)
  });
}

function connect(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** One gRPC unary FetchJWTSVID over a fresh HTTP/2 connection, by hand (status from trailers). */
function grpcCallOnce(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const session = http2.connect('http://localhost', {
      createConnection: () => net.connect(socketPath),
    });
    session.on('error', reject);
    const req = session.request({
      ':method': 'POST',
      ':path': '/SpiffeWorkloadAPI/FetchJWTSVID',
      'content-type': 'application/grpc',
      te: 'trailers',
      'workload.spiffe.io': 'true',
    });
    let status = '';
    req.on('response', (h) => (status = String(h['grpc-status'] ?? status)));
    req.on('trailers', (h) => (status = String(h['grpc-status'] ?? status)));
    req.resume();
    req.on('end', () => {
      session.close();
      resolve(status);
    });
    req.on('error', reject);
    // JWTSVIDRequest{audience: ["a"]}: field 1, length 1, "a"; gRPC frame: flag 0 + length 3.
    req.end(Buffer.from([0, 0, 0, 0, 3, 0x0a, 0x01, 0x61]));
  });
}

async function settleFds(limit: number, ms = 5000): Promise<number> {
  const deadline = Date.now() + ms;
  let n = openFdCount();
  while (n > limit && Date.now() < deadline) {
    await sleep(20);
    n = openFdCount();
  }
  return n;
}

describe('robustness', () => {
  let pki: Pki;
  let run: Running;
  before(async () => {
    pki = await makePki(async (p) => [
      { selector: 'unix:uid:0', svid: await p.svid(`${TD}/a`, 'e1') },
    ]);
    run = await startOnTempSocket(pki.source, { idleTimeoutMs: IDLE_MS });
  });
  after(() => run.stop());

  const stillServing = async () => {
    const client = workloadClient(run.socketPath);
    try {
      const r = await unary<{ svids: unknown[] }>(client, 'FetchJWTSVID', { audience: ['x'] });
      assert.equal(r.svids.length, 1);
    } finally {
      client.close();
    }
  };

  it('garbage bytes: the connection is dropped, the server keeps serving', async () => {
    for (const junk of [
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      Buffer.alloc(64 * 1024, 0xff),
      Buffer.concat([Buffer.from(PREFACE), Buffer.alloc(1024, 0x41)]),
    ]) {
      const s = await connect(run.socketPath);
      s.write(junk);
      assert.ok(await closedByServer(s, 5000), 'the server closed a garbage connection');
    }
    await stillServing();
  });

  it('an oversized request is refused (ResourceExhausted) and the server keeps serving', async () => {
    const client = workloadClient(run.socketPath);
    try {
      await assert.rejects(
        unary(client, 'FetchJWTSVID', { audience: ['a'.repeat(100 * 1024)] }),
        (e: { code: number }) => e.code === 8,
      );
    } finally {
      client.close();
    }
    await stillServing();
  });

  it('half-open and silent connections are closed after the idle timeout', async () => {
    const silent = await connect(run.socketPath);
    const partial = await connect(run.socketPath);
    partial.write(PREFACE.slice(0, 10)); // half a preface, then nothing
    const halfClosed = await connect(run.socketPath);
    halfClosed.end(PREFACE.slice(0, 10)); // and our write side is shut
    await stillServing(); // while they hang around
    const started = Date.now();
    const closed = await Promise.all(
      [silent, partial, halfClosed].map((s) => closedByServer(s, 5000)),
    );
    assert.deepEqual(closed, [true, true, true]);
    assert.ok(Date.now() - started < 5000);
    await stillServing();
  });

  it('an idle watcher is not cut by the idle timeout', async () => {
    const client = workloadClient(run.socketPath);
    const s = openStream<{ svids: { spiffe_id: string }[] }>(client, 'FetchX509SVID');
    await s.next();
    await sleep(IDLE_MS * 4);
    const extra = await pki.svid(`${TD}/b`, 'e2');
    pki.source.update((st) => ({
      ...st,
      entries: [...st.entries, { selector: 'unix:uid:0', svid: extra }],
    }));
    const m = await s.next();
    assert.equal(m.svids.length, 2);
    s.call.cancel();
    client.close();
    pki.source.update((st) => ({ ...st, entries: st.entries.slice(0, 1) }));
  });

  it('2,000 connect/disconnect cycles leave no open descriptors behind', async () => {
    // Warm up (koffi, lazy modules), then take the baseline.
    for (let i = 0; i < 5; i++) assert.equal(await grpcCallOnce(run.socketPath), '0');
    const baseline = await settleFds(openFdCount());
    const started = Date.now();
    const deadline = started + 60_000;
    let raw = 0;
    let calls = 0;
    const BATCH = 50;
    for (let i = 0; i < 2000 && Date.now() < deadline; i += BATCH) {
      await Promise.all(
        Array.from({ length: BATCH }, async (_, j) => {
          if ((i + j) % 4 === 0) {
            assert.equal(await grpcCallOnce(run.socketPath), '0');
            calls++;
          } else {
            const s = await connect(run.socketPath);
            if (j % 2) s.write(PREFACE);
            s.destroy();
            raw++;
          }
        }),
      );
    }
    const elapsed = Date.now() - started;
    assert.equal(raw + calls, 2000, `all cycles ran within the time bound (${elapsed} ms)`);
    const after = await settleFds(baseline + 2);
    console.log(`# ${raw} raw + ${calls} gRPC cycles in ${elapsed} ms; fds ${baseline} → ${after}`);
    assert.ok(after <= baseline + 2, `fds grew from ${baseline} to ${after}`);
    await stillServing();
  });
});
