// One process cannot starve the others: a flood of connections from one uid is capped at its
// per-uid limit (below the global one) while a workload of another uid still gets its SVID, and
// connections that never send the HTTP/2 preface are closed after the preface timeout.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import {
  REPO,
  TD,
  makePki,
  openStream,
  startOnTempSocket,
  workloadClient,
  type Running,
} from './testing/fixtures.ts';

const isRoot = process.getuid?.() === 0;

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A process of `uid` that opens `count` silent connections and reports each one closed. */
function flood(socketPath: string, count: number, uid: number): ChildProcess {
  const code = `
    const net = require('node:net');
    let closed = 0, connected = 0;
    for (let i = 0; i < ${count}; i++) {
      const s = net.connect(${JSON.stringify(socketPath)});
      s.on('connect', () => process.stdout.write('c'));
      s.on('error', () => {});
      s.on('close', () => process.stdout.write('x'));
      s.resume();
    }
    setInterval(() => {}, 1000);
  `;
  return spawn(process.execPath, ['-e', code], {
    uid,
    gid: uid,
    cwd: '/',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
}

/** A process of `uid` that fetches its X.509-SVID with a plain grpc-js client and prints it. */
function fetchAs(socketPath: string, uid: number): ChildProcess {
  const script = `
    const { createRequire } = require('node:module');
    const req = createRequire(${JSON.stringify(path.join(REPO, 'package.json'))});
    const grpc = req('@grpc/grpc-js');
    const loader = req('@grpc/proto-loader');
    const def = loader.loadSync(${JSON.stringify(path.join(REPO, 'proto/spiffe/workload.proto'))}, { keepCase: true });
    const Api = grpc.loadPackageDefinition(def).SpiffeWorkloadAPI;
    const c = new Api(${JSON.stringify('unix://' + socketPath)}, grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    md.add('workload.spiffe.io', 'true');
    const call = c.FetchX509SVID({}, md, { deadline: Date.now() + 15000 });
    call.on('data', (m) => {
      process.stdout.write(JSON.stringify({ ids: m.svids.map((s) => s.spiffe_id) }));
      call.cancel();
      c.close();
    });
    call.on('error', (e) => { if (e.code !== 1) { process.stdout.write(JSON.stringify({ code: e.code, details: e.details })); c.close(); } });
  `;
  return spawn(process.execPath, ['-e', script], {
    uid,
    gid: uid,
    cwd: '/',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function output(child: ChildProcess): Promise<string> {
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  // 'close', not 'exit': 'exit' may come before the child's last output has been read.
  await new Promise<void>((r) => child.once('close', () => r()));
  clearTimeout(timer);
  return out;
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGKILL');
  return done;
}

describe('connection limits', () => {
  const runs: Running[] = [];
  after(async () => {
    for (const r of runs) await r.stop();
  });

  it('a flood from one uid is capped; a workload of another uid still gets its SVID', async (t) => {
    if (!isRoot) return t.skip('needs root to run the flood and the workload as other uids');
    const pki = await makePki(async (p) => [
      { selector: 'unix:uid:0', svid: await p.svid(`${TD}/root`, 'e1') },
      { selector: 'unix:uid:40001', svid: await p.svid(`${TD}/other`, 'e2') },
    ]);
    // 60 connections from uid 65534 would take every slot of a 40-connection server.
    const run = await startOnTempSocket(pki.source, {
      maxConnections: 40,
      maxConnectionsPerUid: 10,
      prefaceTimeoutMs: 120_000,
      idleTimeoutMs: 120_000,
    });
    runs.push(run);
    const flooder = flood(run.socketPath, 60, 65534);
    let events = '';
    flooder.stdout?.on('data', (d: Buffer) => (events += d.toString()));
    try {
      const closed = () => events.split('').filter((c) => c === 'x').length;
      await until(() => closed() >= 50, '50 of the flood closed at accept');
      const other = JSON.parse((await output(fetchAs(run.socketPath, 40001))) || '{}') as unknown;
      assert.deepEqual(other, { ids: [`${TD}/other`] });
      const client = workloadClient(run.socketPath);
      const s = openStream<{ svids: { spiffe_id: string }[] }>(client, 'FetchX509SVID');
      assert.deepEqual(
        (await s.next()).svids.map((x) => x.spiffe_id),
        [`${TD}/root`],
      );
      s.call.cancel();
      client.close();
      assert.equal(closed(), 50, 'the flood keeps exactly its 10 allowed connections');
    } finally {
      await stop(flooder);
    }
  });

  it('closes connections that do not send the HTTP/2 preface in time, not the ones that did', async () => {
    const pki = await makePki(async (p) => [
      { selector: 'unix:uid:0', svid: await p.svid(`${TD}/root`, 'e1') },
    ]);
    const PREFACE_MS = 300;
    const run = await startOnTempSocket(pki.source, {
      prefaceTimeoutMs: PREFACE_MS,
      idleTimeoutMs: 120_000,
    });
    runs.push(run);
    const session = http2.connect('http://localhost', {
      createConnection: () => net.connect(run.socketPath),
    });
    session.on('error', () => {});
    await new Promise<void>((r) => session.once('remoteSettings', () => r()));
    const silent = net.connect(run.socketPath);
    silent.on('error', () => {});
    silent.resume();
    let silentClosed = false;
    silent.once('close', () => (silentClosed = true));
    await until(() => silentClosed, 'the silent connection closed by the server');
    // The session that sent its preface outlived the silent one and still answers.
    assert.equal(session.closed || session.destroyed, false);
    const status = await new Promise<string>((resolve, reject) => {
      const req = session.request({
        ':method': 'POST',
        ':path': '/SpiffeWorkloadAPI/FetchJWTSVID',
        'content-type': 'application/grpc',
        te: 'trailers',
        'workload.spiffe.io': 'true',
      });
      let st = '';
      req.on('response', (h) => (st = String(h['grpc-status'] ?? st)));
      req.on('trailers', (h) => (st = String(h['grpc-status'] ?? st)));
      req.resume();
      req.on('end', () => resolve(st));
      req.on('error', reject);
      req.end(Buffer.from([0, 0, 0, 0, 3, 0x0a, 0x01, 0x61]));
    });
    assert.equal(status, '0');
    session.close();
  });
});
