// The Workload API socket's directory: every component of its path is the agent's or root's and
// writable by no one else (a sticky directory such as /tmp excepted); anything another user could
// change is refused by name, and nothing is created inside it.
import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ensureDirectory } from './socket-file.ts';

const UID = process.getuid?.() ?? 0;
const OTHER = 4321;
const GID = process.getgid?.() ?? 0;
const root = mkdtempSync(path.join(tmpdir(), 'tessera-sockdir-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** A directory with this owner and mode (chmod after chown: chown clears setuid/setgid bits). */
function dirOf(name: string, owner: number, mode: number): string {
  const dir = path.join(root, name);
  mkdirSync(dir);
  chownSync(dir, owner, owner);
  chmodSync(dir, mode);
  return dir;
}

describe('socket directory', () => {
  it('creates missing components 0755 below a sticky world-writable directory (/tmp)', () => {
    const tmp = dirOf('tmp', 0, 0o1777);
    const dir = path.join(tmp, 'tessera-agent', 'public');
    const old = process.umask(0o077);
    try {
      ensureDirectory(dir, UID);
    } finally {
      process.umask(old);
    }
    for (const d of [path.dirname(dir), dir]) assert.equal(statSync(d).mode & 0o7777, 0o755);
    // Again, now that it exists and is ours.
    ensureDirectory(dir, UID);
  });

  it('refuses a component pre-created by another user, naming it; creates nothing in it', () => {
    // Another local user ran `mkdir -m 777 /tmp/tessera-agent` before the agent's first start.
    const tmp = dirOf('tmp2', 0, 0o1777);
    const planted = path.join(tmp, 'tessera-agent');
    mkdirSync(planted);
    chownSync(planted, OTHER, OTHER);
    chmodSync(planted, 0o755);
    const dir = path.join(planted, 'public');
    assert.throws(() => ensureDirectory(dir, UID), {
      name: 'FailedPreconditionError',
      message: `"${planted}" (above ${dir}) is owned by uid ${OTHER} (mode 0755), not by this agent (uid ${UID}) or root: its owner could replace the socket; remove it, or choose another socket path`,
    });
    assert.equal(existsSync(dir), false);
  });

  it('refuses an existing socket directory of another user, naming it, its owner and mode', () => {
    const dir = dirOf('theirs', OTHER, 0o700);
    assert.throws(() => ensureDirectory(dir, UID), {
      message: `socket directory "${dir}" is owned by uid ${OTHER} (mode 0700), not by this agent (uid ${UID}) or root: its owner could replace the socket; remove it, or choose another socket path`,
    });
    // The same directory is fine for an agent running as its owner.
    ensureDirectory(dir, OTHER);
  });

  it('refuses an own socket directory writable by others (no sticky bit)', () => {
    for (const [mode, group] of [
      [0o777, UID],
      [0o757, UID],
      [0o775, OTHER], // a group the agent is not the primary member of
    ] as const) {
      const dir = dirOf(`open-${mode.toString(8)}`, UID, mode);
      chownSync(dir, UID, group);
      chmodSync(dir, mode);
      assert.throws(() => ensureDirectory(dir, UID, GID), {
        message: `socket directory "${dir}" is writable by other users (mode 0${mode.toString(8)}, uid ${UID}, gid ${group}): they could replace the socket; remove their write permission, or choose another socket path`,
      });
    }
    // Group-writable for the agent's own primary group (umask 002 with user-private groups).
    const own = dirOf('own-group', UID, 0o775);
    chownSync(own, UID, GID);
    chmodSync(own, 0o775);
    ensureDirectory(own, UID, GID);
  });

  it('accepts root-owned components for a non-root agent, and resolves symlinks first', () => {
    const rootOwned = dirOf('root-owned', 0, 0o755);
    const own = path.join(rootOwned, 'agent');
    mkdirSync(own);
    chownSync(own, OTHER, OTHER);
    ensureDirectory(own, OTHER);
    const link = path.join(root, 'link');
    symlinkSync(own, link);
    ensureDirectory(link, OTHER);
    // The target is what counts: a link to another user's directory is refused.
    assert.throws(() => ensureDirectory(link, UID === 0 ? 1000 : UID), /is owned by uid 4321/);
  });

  it('a file on the way is "not a directory"', () => {
    mkdirSync(path.join(root, 'x'));
    const f = path.join(root, 'x', 'f');
    writeFileSync(f, '');
    assert.throws(() => ensureDirectory(f, UID), {
      message: `socket directory "${f}" is not a directory`,
    });
    assert.throws(() => ensureDirectory(path.join(f, 'sub'), UID), /is not a directory/);
  });
});
