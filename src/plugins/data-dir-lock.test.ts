import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { DataDirLockedError, DataDirPermissionError, lockDataDir } from './data-dir-lock.ts';

const root = mkdtempSync(path.join(tmpdir(), 'tessera-lock-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('data directory lock', () => {
  it('creates the directory, writes the pid, refuses a second holder naming dir and pid', () => {
    const dir = path.join(root, 'a', 'data');
    const lock = lockDataDir(dir, 4242);
    assert.equal(readFileSync(path.join(dir, 'lock'), 'utf8'), '4242\n');
    // flock is per open file description: a second open in this very process conflicts too.
    assert.throws(() => lockDataDir(dir), {
      name: 'DataDirLockedError',
      code: 'failed_precondition',
      message: `data directory ${dir} is in use by another Tessera process (pid 4242): stop it first, or give this process its own --data-dir`,
    });
    lock.release();
    lock.release();
    assert.equal(readFileSync(path.join(dir, 'lock'), 'utf8'), '');
    const again = lockDataDir(dir);
    assert.equal(readFileSync(path.join(dir, 'lock'), 'utf8'), `${process.pid}\n`);
    again.release();
  });

  it('dies with its holder, even on SIGKILL', async () => {
    const dir = path.join(root, 'b');
    const modUrl = new URL('./data-dir-lock.ts', import.meta.url).href;
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(modUrl)}); m.lockDataDir(${JSON.stringify(dir)}); console.log('locked'); setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const [chunk] = (await once(child.stdout, 'data')) as [Buffer];
    assert.equal(chunk.toString().trim(), 'locked');
    assert.throws(
      () => lockDataDir(dir),
      (e) => e instanceof DataDirLockedError && e.holderPid === child.pid,
    );
    child.kill('SIGKILL');
    await once(child, 'exit');
    const lock = lockDataDir(dir);
    lock.release();
  });

  it('creates a new directory 0700 and says nothing was tightened', () => {
    const dir = path.join(root, 'new');
    const lock = lockDataDir(dir);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(lock.tightenedFrom, null);
    lock.release();
  });

  it('tightens an own directory open to others to 0700, once locked, and reports the old mode', () => {
    const dir = path.join(root, 'open');
    mkdirSync(dir);
    chmodSync(dir, 0o2775);
    const lock = lockDataDir(dir);
    assert.equal(lock.tightenedFrom, 0o2775);
    assert.equal(statSync(dir).mode & 0o7777, 0o700);
    // Refused by the lock: a directory another process holds is not changed.
    chmodSync(dir, 0o755);
    assert.throws(() => lockDataDir(dir), DataDirLockedError);
    assert.equal(statSync(dir).mode & 0o7777, 0o755);
    lock.release();
  });

  it('refuses a directory owned by another uid, naming it, its owner and mode; writes nothing', () => {
    const dir = path.join(root, 'theirs');
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    chownSync(dir, 4321, 4321);
    assert.throws(() => lockDataDir(dir, process.pid, 1000), {
      name: 'DataDirPermissionError',
      code: 'failed_precondition',
      message:
        `data directory ${dir} is owned by uid 4321 (mode 0755), not by this process (uid 1000): ` +
        'another user could read or replace its files; chown it to uid 1000, or give this process its own --data-dir',
    });
    // Root is refused too: the rule is ownership, not the power to override it.
    assert.throws(() => lockDataDir(dir, process.pid, 0), DataDirPermissionError);
    assert.equal(existsSync(path.join(dir, 'lock')), false, 'no lock file was created');
    assert.equal(statSync(dir).mode & 0o7777, 0o755, 'the mode is not changed');
    // Its owner may use it.
    const lock = lockDataDir(dir, process.pid, 4321);
    assert.equal(lock.tightenedFrom, 0o755);
    lock.release();
  });

  it('refuses an own directory writable by every user (anyone could have planted files)', () => {
    for (const mode of [0o777, 0o1777]) {
      const dir = path.join(root, `shared-${mode.toString(8)}`);
      mkdirSync(dir);
      chmodSync(dir, mode);
      assert.throws(() => lockDataDir(dir), {
        name: 'DataDirPermissionError',
        message: `data directory ${dir} is writable by every user (mode 0${mode.toString(8)}): anyone could have planted files in it; give this process its own --data-dir`,
      });
      assert.equal(statSync(dir).mode & 0o7777, mode);
      assert.equal(existsSync(path.join(dir, 'lock')), false);
    }
  });
});
