// Held procfs files (proc-files.ts): the same fingerprint as reading by path, refused for a pin
// that names another process, dead once the process is, closed on release.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { AttestationCache, heldFingerprint, processFingerprint } from './attestation-cache.ts';
import { pidfdOpen } from './peer-credentials.ts';
import { closeProcFiles, openProcFiles } from './proc-files.ts';
import { asleep, exeOf, stop, until } from './testing/processes.ts';
import { pinProcess, releasePin } from './process-pin.ts';

const openFds = () => readdirSync('/proc/self/fd').length;

function sleeper(): ChildProcess {
  return spawn('sleep', ['30'], { stdio: 'ignore' });
}

describe('held procfs files', () => {
  for (const withPidfd of [false, true]) {
    it(`read as the paths do, and fail once the process is gone (${withPidfd ? 'pidfd' : 'start time'} pin)`, async (t) => {
      const child = sleeper();
      try {
        const pid = child.pid!;
        await until(() => exeOf(pid).endsWith('sleep') && asleep(pid), 'sleep asleep');
        const pidfd = withPidfd ? pidfdOpen(pid) : undefined;
        if (withPidfd && pidfd === undefined) return t.skip('no pidfd_open on this kernel');
        const pin = pinProcess(pid, pidfd);
        const files = openProcFiles(pin);
        try {
          assert.equal(heldFingerprint(pin, files), processFingerprint(pin));
          await stop(child);
          assert.throws(() => heldFingerprint(pin, files));
        } finally {
          closeProcFiles(files);
          releasePin(pin);
        }
      } finally {
        await stop(child);
      }
    });
  }

  it('refuses a pin whose start time is not the process at that pid (PID reuse)', async () => {
    const child = sleeper();
    try {
      const pid = child.pid!;
      await until(() => exeOf(pid).endsWith('sleep') && asleep(pid), 'sleep asleep');
      const pin = pinProcess(pid, undefined);
      const before = openFds();
      assert.throws(
        () => openProcFiles({ ...pin, startTime: '1' }),
        /the pid now belongs to another process/,
      );
      assert.equal(openFds(), before, 'nothing left open');
      releasePin(pin);
    } finally {
      await stop(child);
    }
  });

  it('the attestation cache opens them once per pin and closes them on release', async () => {
    const child = sleeper();
    try {
      const pid = child.pid!;
      await until(() => exeOf(pid).endsWith('sleep') && asleep(pid), 'sleep asleep');
      const cache = new AttestationCache({ ttlMs: 1000 });
      const pin = pinProcess(pid, undefined);
      const before = openFds();
      const first = cache.fingerprint(pin);
      assert.ok(first);
      const held = openFds();
      assert.equal(held, before + 4, 'status, cgroup, maps and stat');
      assert.equal(cache.fingerprint(pin), first);
      assert.equal(openFds(), held, 'read again, not opened again');
      cache.release(pin);
      assert.equal(openFds(), before);
      releasePin(pin);
    } finally {
      await stop(child);
    }
  });
});
