// CLI start-up benchmark: whole `tessera` processes (bin/tessera, as an operator runs it) against
// a bare `node -e 0` on the same Node, measured in the same run in alternating rounds:
// - `tessera --version` / `node -e 0` (target ≤ 1.5)
// - `tessera entry list` against a real server with 100 entries / `node -e 0` (target ≤ 3)
// Each ratio is printed twice: best-of-rounds wall time, and CPU time per run (the children's
// user + system time from /proc/self/stat), which moves less when other processes load the
// machine. A command that exits non-zero or prints the wrong thing fails the bench. It says whether
// `entry list` ran from the CLI snapshot (npm run build) or from the sources.
// Run: ./node_modules/.bin/node bench/cli.bench.ts [ms-per-measurement]
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createClient } from '@connectrpc/connect';
import { EntryService } from '../src/client/api/entry.ts';
import { adminSocketTransport } from '../src/client/server-transport.ts';
import { VERSION } from '../src/core/defaults.ts';
import { startServer } from '../test/helpers/server-process.ts';

const ms = Number(process.argv[2] ?? 2000);
const REPO = path.resolve(import.meta.dirname, '..');
const TESSERA = path.join(REPO, 'bin/tessera');
const ENTRIES = 100;
/** USER_HZ: Linux reports /proc times in hundredths of a second on every architecture it runs on. */
const CLOCK_TICKS = 100;

interface Subject {
  name: string;
  cmd: string;
  args: string[];
  /** Throws unless the run did what it should (a failing command is not a fast command). */
  check(stdout: string): void;
  bestMs: number;
  cpuMs: number;
  runs: number;
}

const server = await startServer();
try {
  const entries = createClient(EntryService, adminSocketTransport(server.adminSocket));
  const res = await entries.batchCreateEntry({
    entries: Array.from({ length: ENTRIES }, (_, i) => ({
      spiffeId: `spiffe://example.org/bench/${i}`,
      parentId: 'spiffe://example.org/spire/agent/join_token/bench',
      selectors: [{ type: 'unix', value: `uid:${1000 + i}` }],
    })),
  });
  const failed = res.results.filter((r) => r.status?.code);
  if (failed.length > 0) throw new Error(`cannot create entries: ${failed[0]?.status?.message}`);

  const subject = (
    name: string,
    cmd: string,
    args: string[],
    check: Subject['check'],
  ): Subject => ({ name, cmd, args, check, bestMs: Infinity, cpuMs: 0, runs: 0 });
  const node = subject('node -e 0', process.execPath, ['-e', '0'], () => {});
  const version = subject('tessera --version', TESSERA, ['--version'], (out) => {
    if (out !== `${VERSION}\n`) throw new Error(`tessera --version printed ${JSON.stringify(out)}`);
  });
  const list = subject(
    `tessera entry list (${ENTRIES} entries)`,
    TESSERA,
    ['entry', 'list'],
    (out) => {
      const rows = out.trimEnd().split('\n').length - 1; // minus the header
      if (rows !== ENTRIES) throw new Error(`tessera entry list printed ${rows} entries`);
    },
  );
  const env = { ...process.env, TESSERA_ADMIN_SOCKET: server.adminSocket };
  const subjects = [node, version, list];

  const once = (s: Subject): void => {
    const cpu0 = childCpuMs();
    const t0 = performance.now();
    const r = spawnSync(s.cmd, s.args, { env, encoding: 'utf8' });
    const wall = performance.now() - t0;
    if (r.status !== 0) {
      throw new Error(`${s.name} exited ${r.status ?? r.signal}: ${r.stderr}`);
    }
    s.check(r.stdout);
    s.cpuMs += childCpuMs() - cpu0;
    s.bestMs = Math.min(s.bestMs, wall);
    s.runs++;
  };

  // Warm-up (fills Node's compile cache on a fresh machine), then alternating rounds.
  for (const s of subjects) once(s);
  // Which path bin/tessera takes for `entry list`: the CLI snapshot only when it is built and
  // fresh (npm run build); the module loader's debug log names the sources when they load.
  const probe = spawnSync(TESSERA, list.args, {
    env: { ...env, NODE_DEBUG: 'module,esm' },
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  console.log(
    probe.stderr.includes('src/cli/program.ts')
      ? 'tessera entry list runs from the sources (no fresh CLI snapshot: npm run build)'
      : 'tessera entry list runs from the CLI snapshot (build/cli/cli.blob)',
  );
  for (const s of subjects) Object.assign(s, { bestMs: Infinity, cpuMs: 0, runs: 0 });
  const deadline = performance.now() + Math.max(ms, 1000) * subjects.length;
  do for (const s of subjects) once(s);
  while (performance.now() < deadline || node.runs < 10);

  for (const s of subjects) {
    console.log(
      `${s.name.padEnd(48)} best ${s.bestMs.toFixed(1).padStart(7)} ms wall, ` +
        `${(s.cpuMs / s.runs).toFixed(1).padStart(6)} ms CPU/run (${s.runs} runs)`,
    );
  }
  atMost('tessera --version / node -e 0', version, node, 1.5);
  atMost(`tessera entry list (${ENTRIES}) / node -e 0`, list, node, 3);
} finally {
  await server.stop();
}

/** Prints the wall and CPU ratios with the target beside them (lower is better). */
function atMost(name: string, s: Subject, base: Subject, target: number): void {
  for (const [what, r] of [
    ['wall', s.bestMs / base.bestMs],
    ['CPU', s.cpuMs / s.runs / (base.cpuMs / base.runs)],
  ] as const) {
    const verdict = r <= target ? 'ok' : 'ABOVE';
    console.log(
      `${`ratio ${name}, ${what}`.padEnd(48)} ${r.toFixed(3)} (target ≤ ${target.toFixed(2)}: ${verdict})`,
    );
  }
}

/** User + system CPU of this process's waited-for children so far (/proc/self/stat), in ms. */
function childCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // Fields after the parenthesised command name; cutime and cstime are fields 16 and 17.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[13]) + Number(fields[14]);
  return (ticks * 1000) / CLOCK_TICKS;
}
