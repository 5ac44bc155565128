// The per-connection attestation cache (attestation-cache.ts) used by FetchJWTSVID: reuse while
// the process reads the same; a fresh attestation after exec(), a uid change, the TTL, or a change
// during attestation; and the pin is still checked on every reuse.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Selector } from '../../core/selector.ts';
import { credentialLines, processFingerprint } from './attestation-cache.ts';
import { AttestationService } from './attestation-service.ts';
import type { CallerProcess, SelectorSource } from './caller.ts';
import { identifyUnixPeer, releaseConnection, type ConnectionPeer } from './connection-peer.ts';
import { asleep, exeOf, stop, until } from './testing/processes.ts';
import { pinProcess, type ProcessPin } from './process-pin.ts';

/** A source whose selectors are what the kernel says now: uid (from status) and executable. */
function kernelSource(onAttest: (pid: number) => Promise<void> | void = () => {}) {
  const calls: number[] = [];
  const source = {
    async attest(caller: CallerProcess): Promise<Selector[]> {
      calls.push(caller.pid);
      await onAttest(caller.pid);
      const status = credentialLines(
        (await import('node:fs')).readFileSync(`/proc/${caller.pid}/status`, 'utf8'),
      );
      const euid = /^Uid:\s+\d+\s+(\d+)/m.exec(status)?.[1] ?? '?';
      return [
        { type: 'unix', value: `uid:${euid}` },
        { type: 'unix', value: `path:${readlinkSync(`/proc/${caller.pid}/exe`)}` },
      ];
    },
  } satisfies SelectorSource;
  return { source, calls };
}

function ctxFor(pid: number, pin: ProcessPin): ConnectionPeer {
  return { ok: true, transport: 'unix', caller: { pid, uid: 0, gid: 0 }, pin };
}

/**
 * The attestation service over `source`, no entries; reuse for `ttlMs` (0: off). The kernel
 * facts are re-read on every call (`revalidateMs` 0) unless a test says otherwise.
 */
function service(
  source: SelectorSource,
  ttlMs: number,
  now?: () => number,
  revalidateMs = 0,
): AttestationService {
  return new AttestationService({
    selectors: source,
    entries: { match: () => [] },
    attestTimeoutMs: 5000,
    reuseTtlMs: ttlMs,
    revalidateMs,
    ...(now ? { now } : {}),
  });
}

/** One call's selectors; `reuse` as a unary call (FetchJWTSVID) asks. */
async function attest(
  svc: AttestationService,
  peer: ConnectionPeer,
  reuse: boolean,
): Promise<readonly Selector[]> {
  return (await svc.attest(peer, new AbortController().signal, { reuse })).selectors;
}

const texts = (s: readonly Selector[]) => s.map((x) => `${x.type}:${x.value}`);

/** `sh` that exec()s `sleep` (another binary, same pid) when it reads a line. */
function shellThatExecs(): ChildProcess {
  return spawn('sh', ['-c', 'read line; exec sleep 30'], { stdio: ['pipe', 'ignore', 'ignore'] });
}

describe('attestation service: reuse per connection, re-validated per call', () => {
  it('reuses the attestation while the process is unchanged; streams always attest', async () => {
    const { source, calls } = kernelSource();
    const svc = service(source, 60_000);
    const pin = pinProcess(process.pid, undefined);
    const ctx = ctxFor(process.pid, pin);
    const first = await attest(svc, ctx, true);
    const second = await attest(svc, ctx, true);
    assert.deepEqual(second, first);
    assert.equal(calls.length, 1, 'the second call reused the first attestation');
    await attest(svc, ctx, false);
    assert.equal(calls.length, 2, 'reuse=false attests');
    // A cache with TTL 0 is off.
    await attest(service(source, 0), ctx, true);
    await attest(service(source, 0), ctx, true);
    assert.equal(calls.length, 4);
  });

  it('a process that exec()s another binary on the same pid is attested afresh', async () => {
    const child = shellThatExecs();
    try {
      const pid = child.pid as number;
      // Waiting in `read`: the loader has mapped the shell's libraries (they are in the fingerprint).
      await until(
        () => (exeOf(pid).endsWith('sh') || exeOf(pid).includes('dash')) && asleep(pid),
        'sh waiting for its line',
      );
      const shExe = exeOf(pid);
      const { source, calls } = kernelSource();
      const svc = service(source, 60_000);
      const pin = pinProcess(pid, undefined);
      const ctx = ctxFor(pid, pin);
      const before = await attest(svc, ctx, true);
      assert.ok(texts(before).includes(`unix:path:${shExe}`));
      await attest(svc, ctx, true);
      assert.equal(calls.length, 1);

      child.stdin?.write('go\n');
      await until(() => exeOf(pid).endsWith('sleep'), 'exec of sleep');
      const after = await attest(svc, ctx, true);
      assert.equal(calls.length, 2, 'exec invalidated the cached attestation');
      assert.ok(texts(after).includes(`unix:path:${exeOf(pid)}`));
      assert.ok(!texts(after).includes(`unix:path:${shExe}`), 'nothing of the predecessor');
    } finally {
      await stop(child);
    }
  });

  it('with a pidfd pin (SO_PEERPIDFD): exec() on a connection is attested afresh', async (t) => {
    // The production path on kernels with SO_PEERPIDFD: the connection is identified at accept
    // (identifyUnixPeer), the caller then exec()s /bin/sleep (process.execve) on the same pid.
    const dir = mkdtempSync(path.join(tmpdir(), 'tessera-ac-'));
    const socketPath = path.join(dir, 's.sock');
    const accepted: net.Socket[] = [];
    const server = net.createServer((s) => accepted.push(s));
    await new Promise<void>((r) => server.listen(socketPath, r));
    const code = `require('net').connect(${JSON.stringify(socketPath)}).on('error', () => {}); process.stdin.once('data', () => process.execve('/bin/sleep', ['sleep', '30'])); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['-e', code], { stdio: ['pipe', 'ignore', 'ignore'] });
    try {
      await until(() => accepted.length > 0, 'connection');
      const peer = identifyUnixPeer(accepted[0]!);
      assert.ok(peer.ok, peer.ok ? '' : peer.reason);
      if (peer.pin.pidfd === undefined) {
        t.skip('kernel without SO_PEERPIDFD (the start-time variant is tested above)');
        return;
      }
      const pid = child.pid as number;
      const { source, calls } = kernelSource();
      const svc = service(source, 60_000);
      const ctx = peer;
      const nodeExe = exeOf(pid);
      assert.ok(texts(await attest(svc, ctx, true)).includes(`unix:path:${nodeExe}`));
      await attest(svc, ctx, true);
      assert.equal(calls.length, 1, 'reused');
      child.stdin?.write('x');
      await until(() => exeOf(pid).endsWith('sleep'), 'exec of sleep');
      const after = texts(await attest(svc, ctx, true));
      assert.equal(calls.length, 2, 'exec invalidated the cached attestation');
      assert.ok(!after.includes(`unix:path:${nodeExe}`));
      releaseConnection(peer);
    } finally {
      await stop(child);
      accepted.forEach((s) => s.destroy());
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a process that changes its uid is attested afresh', async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root to start a process that can drop to uid 65534');
      return;
    }
    const code = `process.stdin.once('data', () => { process.setgroups([65534]); process.setgid(65534); process.setuid(65534); process.stdout.write('dropped\\n'); }); process.stdout.write('ready\\n'); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['-e', code], { stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await until(() => out.includes('ready'), 'child ready');
      const pid = child.pid as number;
      const { source, calls } = kernelSource();
      const svc = service(source, 60_000);
      const ctx = ctxFor(pid, pinProcess(pid, undefined));
      assert.ok(texts(await attest(svc, ctx, true)).includes('unix:uid:0'));
      await attest(svc, ctx, true);
      assert.equal(calls.length, 1);
      child.stdin?.write('x');
      await until(() => out.includes('dropped'), 'setuid');
      const after = texts(await attest(svc, ctx, true));
      assert.equal(calls.length, 2, 'the uid change invalidated the cached attestation');
      assert.ok(after.includes('unix:uid:65534'));
      assert.ok(!after.includes('unix:uid:0'));
    } finally {
      await stop(child);
    }
  });

  it('expires after the TTL (facts outside the process, e.g. account names)', async () => {
    let now = 1000;
    const { source, calls } = kernelSource();
    const svc = service(source, 500, () => now);
    const ctx = ctxFor(process.pid, pinProcess(process.pid, undefined));
    await attest(svc, ctx, true);
    now += 499;
    await attest(svc, ctx, true);
    assert.equal(calls.length, 1);
    now += 1;
    await attest(svc, ctx, true);
    assert.equal(calls.length, 2);
  });

  it('does not cache a result when the process changed while it was being attested', async () => {
    const child = shellThatExecs();
    try {
      const pid = child.pid as number;
      await until(() => exeOf(pid) !== '' && !exeOf(pid).endsWith('node') && asleep(pid), 'sh');
      let execOnce = true;
      const { source, calls } = kernelSource(async () => {
        if (!execOnce) return;
        execOnce = false;
        child.stdin?.write('go\n');
        await until(() => exeOf(pid).endsWith('sleep'), 'exec of sleep');
      });
      const svc = service(source, 60_000);
      const pin = pinProcess(pid, undefined);
      const ctx = ctxFor(pid, pin);
      await attest(svc, ctx, true);
      await attest(svc, ctx, true);
      assert.equal(calls.length, 2);
      await attest(svc, ctx, true);
      assert.equal(calls.length, 2, 'the stable process is cached from then on');
    } finally {
      await stop(child);
    }
  });

  it('still checks the pin on reuse: a caller that exited gets Unavailable', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    const pid = child.pid as number;
    await until(() => exeOf(pid).endsWith('sleep'), 'sleep');
    const { source } = kernelSource();
    const svc = service(source, 60_000);
    const pin = pinProcess(pid, undefined);
    const ctx = ctxFor(pid, pin);
    await attest(svc, ctx, true);
    await stop(child);
    await assert.rejects(attest(svc, ctx, true), /Unavailable|could not/i);
    assert.throws(() => processFingerprint(pin));
  });

  it('with a re-validation interval: facts re-read at most that often, the pin on every call', async () => {
    const child = shellThatExecs();
    try {
      const pid = child.pid as number;
      await until(() => exeOf(pid) !== '' && !exeOf(pid).endsWith('node') && asleep(pid), 'sh');
      let now = 1000;
      const { source, calls } = kernelSource();
      const svc = service(source, 60_000, () => now, 100);
      const ctx = ctxFor(pid, pinProcess(pid, undefined));
      const before = await attest(svc, ctx, true);
      child.stdin?.write('go\n');
      await until(() => exeOf(pid).endsWith('sleep'), 'exec of sleep');
      now += 99;
      assert.deepEqual(await attest(svc, ctx, true), before, 'within the interval: reused');
      assert.equal(calls.length, 1);
      now += 1;
      const after = texts(await attest(svc, ctx, true));
      assert.equal(calls.length, 2, 'at the interval: the exec is seen and attested afresh');
      assert.ok(after.includes(`unix:path:${exeOf(pid)}`));
      // Within the next interval, a caller that is gone is refused at once (the pin).
      now += 10;
      await stop(child);
      await assert.rejects(attest(svc, ctx, true), /could not verify existence/);
    } finally {
      await stop(child);
    }
  });

  it('reads the credential lines of /proc/<pid>/status', () => {
    const status =
      'Name:\tx\nUid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\nFDSize:\t64\nGroups:\t9 10\nX:\t1\n';
    assert.equal(credentialLines(status), 'Uid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\nGroups:\t9 10');
    assert.throws(() => credentialLines('Name:\tx\nUid:\t1\n'), /no Gid/);
  });
});
