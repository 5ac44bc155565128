// A network namespace for a test, entered by the test process's main thread (setns(2) through
// koffi), so that everything the test then starts — server, agent, CLI, clients (spawned from the
// main thread, they inherit its namespace) — and every socket it opens itself lives there: its
// loopback, its addresses, its iptables rules. The host's network is not touched. Needs root.
import { spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import type Koffi from 'koffi';

const CLONE_NEWNET = 0x40000000;
export const SBIN_PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;

/** Runs a command (PATH with /usr/sbin); throws with its stderr when it fails. */
export function sh(args: readonly string[], input?: string): string {
  const r = spawnSync(args[0] as string, args.slice(1), {
    input,
    encoding: 'utf8',
    env: { ...process.env, PATH: SBIN_PATH },
    timeout: 30_000,
  });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  return r.stdout;
}

export interface EnteredNetns {
  /** Back to the namespace the test started in, then the namespace is deleted. Idempotent. */
  leave(): void;
}

/** Creates namespace `name` (lo up, `addresses` on lo) and moves the main thread into it. */
export function enterNewNetns(name: string, addresses: readonly string[]): EnteredNetns {
  const koffi = createRequire(import.meta.url)('koffi') as typeof Koffi;
  const setns = koffi.load(null).func('int setns(int fd, int nstype)');
  sh(['ip', 'netns', 'add', name]);
  let home = -1;
  let left = false;
  const leave = () => {
    if (left) return;
    left = true;
    if (home >= 0) {
      if ((setns(home, CLONE_NEWNET) as number) !== 0) {
        throw new Error(`setns back to the original network namespace: errno ${koffi.errno()}`);
      }
      closeSync(home);
    }
    spawnSync('ip', ['netns', 'del', name], { env: { ...process.env, PATH: SBIN_PATH } });
  };
  try {
    sh(['ip', 'netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
    for (const a of addresses) {
      // nodad: an IPv6 address is usable at once (not tentative while duplicate detection runs).
      sh([
        'ip',
        'netns',
        'exec',
        name,
        'ip',
        'addr',
        'add',
        a,
        'dev',
        'lo',
        ...(a.includes(':') ? ['nodad'] : []),
      ]);
    }
    home = openSync('/proc/self/ns/net', 'r');
    const target = openSync(`/run/netns/${name}`, 'r');
    try {
      if ((setns(target, CLONE_NEWNET) as number) !== 0) {
        throw new Error(`setns into ${name}: errno ${koffi.errno()}`);
      }
    } finally {
      closeSync(target);
    }
  } catch (e) {
    leave();
    throw e;
  }
  return { leave };
}
