// The caller identity chain: SO_PEERCRED / SO_PEERPIDFD from the kernel, the process pin, and
// what the server hands to source.attest — for this process and for a process of another user.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UnavailableError } from '../../core/errors.ts';
import { identifyUnixPeer, releaseConnection, type ConnectionPeer } from './connection-peer.ts';
import { closeFd, peerCredentials, peerPidfd, socketFd } from './peer-credentials.ts';
import {
  parsePidfdPid,
  parseStartTime,
  pinProcess,
  releasePin,
  verifyPin,
  type ProcessPin,
} from './process-pin.ts';
import {
  REPO,
  TD,
  makePki,
  openFdCount,
  openStream,
  startOnTempSocket,
  workloadClient,
  type Pki,
  type Running,
  staticAttestation,
} from '../workload-api/testing/fixtures.ts';

const NODE = process.execPath;

/** A plain Unix-socket server; `accepted` yields server-side sockets. */
async function rawServer(dir: string) {
  const socketPath = path.join(dir, `raw-${process.hrtime.bigint()}.sock`);
  const accepted: net.Socket[] = [];
  const server = net.createServer((s) => accepted.push(s));
  await new Promise<void>((r) => server.listen(socketPath, r));
  const nextAccepted = async () => {
    const deadline = Date.now() + 5000;
    while (accepted.length === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 5));
    const s = accepted.shift();
    if (!s) throw new Error('nothing accepted');
    return s;
  };
  const close = () => {
    accepted.forEach((s) => s.destroy());
    return new Promise<void>((r) => server.close(() => r()));
  };
  return { socketPath, nextAccepted, close };
}

/** A child node process that connects to `socketPath` and stays until killed. */
function connectingChild(
  socketPath: string,
  opts: { uid?: number; gid?: number } = {},
): ChildProcess {
  const code = `require('net').connect(${JSON.stringify(socketPath)}).on('error', () => {}); setInterval(() => {}, 1000);`;
  return spawn(NODE, ['-e', code], { ...opts, stdio: 'ignore', cwd: '/' });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((r) =>
    child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r()),
  );
}

describe('peer credentials (SO_PEERCRED, SO_PEERPIDFD)', () => {
  let run: Running;
  let pki: Pki;
  before(async () => {
    pki = await makePki(async (p) => [
      { selector: 'unix:uid:0', svid: await p.svid(`${TD}/root`, 'e1') },
      { selector: 'unix:uid:65534', svid: await p.svid(`${TD}/nobody`, 'e2') },
    ]);
    run = await startOnTempSocket(pki.source);
  });
  after(() => run.stop());

  it('reads this process as the peer of a connection it made', async () => {
    const raw = await rawServer(run.dir);
    const client = net.connect(raw.socketPath);
    const accepted = await raw.nextAccepted();
    const fd = socketFd(accepted);
    assert.deepEqual(peerCredentials(fd), {
      pid: process.pid,
      uid: process.getuid?.(),
      gid: process.getgid?.(),
    });
    const pidfd = peerPidfd(fd);
    if (pidfd === undefined) {
      console.log('# kernel without SO_PEERPIDFD: pinning by start time only');
    } else {
      assert.equal(parsePidfdPid(readFileSync(`/proc/self/fdinfo/${pidfd}`, 'utf8')), process.pid);
      const before = openFdCount();
      closeFd(pidfd);
      assert.equal(openFdCount(), before - 1, 'closeFd releases the pidfd');
    }
    assert.throws(() => peerCredentials(999_999), /SO_PEERCRED/);
    client.destroy();
    await raw.close();
  });

  it('the server passes this process (pid, uid, gid) to source.attest', async () => {
    const client = workloadClient(run.socketPath);
    pki.source.attestCalls.length = 0;
    const s = openStream<{ svids: { spiffe_id: string }[] }>(client, 'FetchX509SVID');
    const m = await s.next();
    assert.deepEqual(
      m.svids.map((x) => x.spiffe_id),
      [`${TD}/root`],
    );
    assert.deepEqual(pki.source.attestCalls, [
      { pid: process.pid, uid: process.getuid?.(), gid: process.getgid?.() },
    ]);
    s.call.cancel();
    client.close();
  });

  it('a process of another user (uid 65534) is attested as itself', async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root to spawn a process as uid 65534');
      return;
    }
    pki.source.attestCalls.length = 0;
    const script = `
      const { createRequire } = require('node:module');
      const req = createRequire(${JSON.stringify(path.join(REPO, 'package.json'))});
      const grpc = req('@grpc/grpc-js');
      const loader = req('@grpc/proto-loader');
      const def = loader.loadSync(${JSON.stringify(path.join(REPO, 'proto/spiffe/workload.proto'))}, { keepCase: true });
      const Api = grpc.loadPackageDefinition(def).SpiffeWorkloadAPI;
      const c = new Api(${JSON.stringify('unix://' + run.socketPath)}, grpc.credentials.createInsecure());
      const md = new grpc.Metadata();
      md.add('workload.spiffe.io', 'true');
      const call = c.FetchX509SVID({}, md);
      call.on('data', (m) => {
        process.stdout.write(JSON.stringify({ uid: process.getuid(), ids: m.svids.map((s) => s.spiffe_id) }));
        call.cancel();
        c.close();
      });
      call.on('error', (e) => { if (e.code !== 1) { process.stdout.write(JSON.stringify({ code: e.code, details: e.details })); c.close(); } });
    `;
    const child = spawn(NODE, ['-e', script], {
      uid: 65534,
      gid: 65534,
      cwd: '/',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited(child);
    clearTimeout(timer);
    assert.deepEqual(JSON.parse(out || '{}'), { uid: 65534, ids: [`${TD}/nobody`] }, err);
    assert.deepEqual(pki.source.attestCalls, [{ pid: child.pid, uid: 65534, gid: 65534 }]);
  });

  it('identifies and pins another process by pidfd and start time; its exit breaks the pin', async () => {
    const raw = await rawServer(run.dir);
    const child = connectingChild(raw.socketPath);
    const accepted = await raw.nextAccepted();
    const peer = identifyUnixPeer(accepted);
    assert.ok(peer.ok, peer.ok ? '' : peer.reason);
    assert.equal(peer.caller.pid, child.pid);
    assert.equal(
      peer.pin.startTime,
      parseStartTime(readFileSync(`/proc/${child.pid}/stat`, 'utf8')),
    );
    await verifyPin(peer.pin);
    child.kill('SIGKILL');
    await exited(child);
    await assert.rejects(verifyPin(peer.pin), UnavailableError);
    releaseConnection(peer);
    await raw.close();
  });
});

describe('process pin', () => {
  it('parses field 22 after the last ")" even when comm has spaces and parentheses', () => {
    const rest = Array.from({ length: 50 }, (_, i) => String(i + 3)).join(' ');
    assert.equal(parseStartTime(`42 (a) b (c)) ${rest}`), '22');
    assert.equal(parseStartTime(`1 (systemd) ${rest}\n`), '22');
    assert.throws(() => parseStartTime('42 (x) S 1'), /malformed/);
    assert.throws(() => parseStartTime('no paren'), /malformed/);
    assert.equal(parsePidfdPid('pos:\t0\nPid:\t-1\nNSpid:\t-1\n'), -1);
    assert.equal(parsePidfdPid('pos:\t0\n'), undefined);
  });

  it('rejects pids it cannot see, a changed start time, and released pins', async () => {
    assert.throws(() => pinProcess(0, undefined), /not visible/);
    const pin = pinProcess(process.pid, undefined);
    await verifyPin(pin);
    const forged: ProcessPin = { ...pin, startTime: String(BigInt(pin.startTime) + 1n) };
    await assert.rejects(verifyPin(forged), /could not verify existence of the original caller/);
    releasePin(pin);
    releasePin(pin); // idempotent
    await assert.rejects(verifyPin(pin), UnavailableError);
  });

  it('attestation whose caller exits meanwhile answers Unavailable, not the selectors', async () => {
    const pki = await makePki(async () => []);
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    const pin = pinProcess(child.pid as number, undefined);
    pki.source.attestHook = async () => {
      child.kill('SIGKILL');
      await exited(child);
    };
    const peer: ConnectionPeer = {
      ok: true,
      transport: 'unix',
      caller: { pid: child.pid as number, uid: 0, gid: 0 },
      pin,
    };
    const signal = new AbortController().signal;
    await assert.rejects(
      staticAttestation(pki.source, { attestTimeoutMs: 5000 }).attest(peer, signal),
      /could not verify existence of the original caller/,
    );

    pki.source.attestHook = () => new Promise(() => {}); // an attestor that never answers
    const pin2 = pinProcess(process.pid, undefined);
    const peer2: ConnectionPeer = {
      ...peer,
      caller: { pid: process.pid, uid: 0, gid: 0 },
      pin: pin2,
    };
    const started = Date.now();
    await assert.rejects(
      staticAttestation(pki.source, { attestTimeoutMs: 100 }).attest(peer2, signal),
      /workload attestation failed/,
    );
    assert.ok(Date.now() - started < 2000);
  });
});
