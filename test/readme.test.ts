// The README is a test: its shell blocks run in order as a reader runs them — `npm start` and
// the next commands it prints, then the tour — in a fresh working directory and a fresh HOME.
// Long-running commands (servers, agents, watchers) start in the background, as in "another
// terminal", and must come up; every other command must exit 0 without printing an error;
// `<placeholders>` are filled from what earlier commands printed, as a reader would. At the end
// every background process gets SIGTERM and must exit cleanly. One substitution a reader makes
// too: the README's PostgreSQL database is a fresh one the test creates (as every PostgreSQL
// test does), not a `tessera` database that may already hold someone's data.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { createTempDatabase, type TempDatabase } from './helpers/postgres.ts';
import { REPO } from './helpers/server-process.ts';
import { nextCommands, placeholders, readmeSteps, type Step } from './helpers/readme-steps.ts';

const STEP_TIMEOUT_MS = 90_000;
const README_PG_URL = 'postgres://postgres@127.0.0.1:5432/tessera';

interface Ran {
  command: string;
  stdout: string;
  stderr: string;
}

/** How a reader fills each placeholder: from the output of an earlier command. */
const fillers: Array<[RegExp, (history: readonly Ran[]) => string | undefined]> = [
  [
    /^token$/,
    (h) =>
      lastOf(h, /\btoken generate\b/)
        ?.stdout.split('\n')[0]
        ?.trim(),
  ],
  [
    /agent.*ID/i,
    (h) => {
      for (const r of [...h].reverse()) {
        const m = /agent(?: SPIFFE ID)?:?\s+(spiffe:\/\/\S+)/i.exec(r.stdout + r.stderr);
        if (m?.[1]) return m[1];
      }
      return undefined;
    },
  ],
];

function lastOf(history: readonly Ran[], re: RegExp): Ran | undefined {
  return [...history].reverse().find((r) => re.test(r.command));
}

describe('the README, run as written', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'tessera-readme-'));
  const work = path.join(root, 'work');
  const home = path.join(root, 'home');
  mkdirSync(work);
  mkdirSync(home);
  // The reader's checkout: the commands use bin/, node_modules/ and examples/ from the repo.
  for (const name of ['bin', 'node_modules', 'examples'])
    symlinkSync(path.join(REPO, name), path.join(work, name));
  // A fresh terminal: no TESSERA_* or SPIFFE_* variables from whoever runs the tests.
  const freshEnv = (): Record<string, string> => ({
    PATH: (process.env.PATH ?? '/usr/bin:/bin')
      .split(':')
      .filter((d) => !d.includes('node_modules'))
      .join(':'),
    HOME: home,
    LANG: 'C.UTF-8',
  });
  const history: Ran[] = [];
  let db: TempDatabase | undefined;
  const background: Array<{ command: string; proc: ChildProcess; output: () => string }> = [];

  after(async () => {
    for (const b of background.reverse()) await stop(b.proc);
    await db?.drop();
    rmSync(root, { recursive: true, force: true });
  });

  const fill = async (command: string): Promise<string> => {
    let out = command;
    if (out.includes(README_PG_URL)) {
      db ??= await createTempDatabase('tessera_readme');
      out = out.replaceAll(README_PG_URL, db.url);
    }
    for (const name of placeholders(command)) {
      const filler = fillers.find(([re]) => re.test(name));
      const value = filler?.[1](history);
      assert.ok(value, `no earlier output gives the placeholder <${name}> in: ${command}`);
      out = out.replace(`<${name}>`, value);
    }
    return out;
  };

  const runStep = async (step: Step, cwd: string, env: Record<string, string>): Promise<void> => {
    if (step.kind === 'skip') return;
    if (step.kind === 'export') {
      env[step.name] = (await shell(`printf '%s' ${step.value}`, cwd, env)).stdout;
      return;
    }
    const command = await fill(step.command);
    const where = `README line ${step.line}: ${command}`;
    if (step.kind === 'background') {
      const b = startBackground(command, cwd, env);
      background.push({ command, ...b });
      await b.ready(step.readyWhen).catch((e: unknown) => {
        throw new Error(`${where}\n${(e as Error).message}\n${b.output()}`);
      });
      history.push({ command, stdout: b.output(), stderr: '' });
      return;
    }
    const r = await shell(command, cwd, env);
    history.push({ command, stdout: r.stdout, stderr: r.stderr });
    assert.equal(r.code, 0, `${where}\nexited ${r.code}\n${r.stdout}\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /^error\b/im, `${where}\nprinted an error\n${r.stderr}`);
  };

  it('every command block runs, in order, and the long-running ones stop cleanly', async () => {
    const steps = readmeSteps(readFileSync(path.join(REPO, 'README.md'), 'utf8'));
    assert.ok(steps.some((s) => s.kind === 'background' && /npm start/.test(s.command)));
    const env = freshEnv();
    for (const step of steps) {
      // `npm start` runs from the checkout itself; everything else from the reader's directory.
      const fromRepo = step.kind === 'background' && /^npm start\b/.test(step.command);
      await runStep(step, fromRepo ? REPO : work, env);
      if (fromRepo) {
        // Its next commands, in another terminal of their own.
        const printed = nextCommands(history.at(-1)?.stdout ?? '');
        assert.ok(printed.length > 0, 'npm start printed no next commands');
        const other = freshEnv();
        for (const next of printed) await runStep(next, work, other);
      }
    }
    for (const b of background.reverse()) {
      // npm start is stopped as its output says, with Ctrl-C; npm itself then ends by that
      // signal, so what shows a clean stop is that nothing after "Ctrl-C stops both" is an error.
      const npm = /^npm start\b/.test(b.command);
      const how = await stop(b.proc, npm ? 'SIGINT' : 'SIGTERM');
      const clean = npm ? how.code === 0 || how.signal === 'SIGINT' : how.code === 0;
      assert.ok(clean, `stopping "${b.command}" ended with ${JSON.stringify(how)}\n${b.output()}`);
      const afterReady = npm ? b.output().split('Ctrl-C stops both').at(-1) : b.output();
      assert.doesNotMatch(
        afterReady ?? '',
        /"level":(50|60)|\berror\b/i,
        `"${b.command}" logged an error:\n${b.output()}`,
      );
    }
    background.length = 0;
  });
});

function shell(
  command: string,
  cwd: string,
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn('bash', ['-c', `set -o pipefail; ${command}`], { cwd, env });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), STEP_TIMEOUT_MS);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function startBackground(command: string, cwd: string, env: Record<string, string>) {
  // Its own process group, so that SIGTERM reaches the process npm or the shell started.
  // `exec` after any leading VAR=value assignments, so that the signal reaches the command.
  const m = /^((?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*)(.*)$/.exec(command);
  const script = `${m?.[1] ?? ''}exec ${m?.[2] ?? command}`;
  const proc = spawn('bash', ['-c', script], { cwd, env, detached: true });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const ready = (re: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => {
        cleanup();
        reject(new Error(`not ready within ${STEP_TIMEOUT_MS} ms`));
      }, STEP_TIMEOUT_MS);
      const check = () => {
        if (re.test(out)) {
          cleanup();
          resolve();
        }
      };
      const exited = (code: number | null) => {
        cleanup();
        reject(new Error(`exited (${code}) before it was ready`));
      };
      const cleanup = () => {
        clearTimeout(deadline);
        proc.stdout?.off('data', check);
        proc.stderr?.off('data', check);
        proc.off('exit', exited);
      };
      proc.stdout?.on('data', check);
      proc.stderr?.on('data', check);
      proc.once('exit', exited);
      check();
    });
  return { proc, ready, output: () => out };
}

/** `signal` to the process group; how it ended (SIGKILL after 30 s if it had not). */
async function stop(
  proc: ChildProcess,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (proc.exitCode !== null || proc.signalCode !== null)
    return { code: proc.exitCode, signal: proc.signalCode };
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    proc.once('exit', (code, sig) => r({ code, signal: sig })),
  );
  process.kill(-(proc.pid ?? 0), signal);
  const timer = setTimeout(() => {
    try {
      process.kill(-(proc.pid ?? 0), 'SIGKILL');
    } catch {
      // gone
    }
  }, 30_000);
  const how = await exited;
  clearTimeout(timer);
  return how;
}
