import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { DataDirLockedError, lockDataDir } from './data-dir-lock.ts';

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
});
