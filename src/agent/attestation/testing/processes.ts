// Test support (imported only by tests): watching a child process through /proc — its
// executable, whether it sleeps (blocked in a read or a sleep: its loader is done mapping the
// libraries the fingerprint includes) — bounded waits, and a kill that waits for the exit.
import type { ChildProcess } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';

/** Polls `cond` every 10 ms until it holds; throws naming `what` after `ms`. */
export async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The process's executable ('' once it is gone). */
export function exeOf(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return '';
  }
}

/** State S in /proc/<pid>/stat: blocked (in a read, a sleep). */
export function asleep(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('S');
  } catch {
    return false;
  }
}

/** SIGKILL, resolved once the child has exited (at once if it has already). */
export function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGKILL');
  return done;
}
