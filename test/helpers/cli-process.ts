// `tessera` commands as real processes: startCli for a long-running one (audit list --follow,
// svid watch) whose output tests read while it runs and stop with a signal as an operator would;
// runCli for one expected to end by itself (a server that refuses to start, an admin command).
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { CLI, REPO } from './server-process.ts';
import { waitFor } from './ports.ts';

export interface CliProcess {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Polls until `check(stdout)` holds; fails with the output so far after `ms`. */
  waitForOutput(what: string, check: (stdout: string) => boolean, ms?: number): Promise<void>;
  /** Resolves to the exit code once the command ends by itself. */
  exited(): Promise<number | null>;
  /** Sends `signal` and resolves to the exit code (null if killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function startCli(args: string[], env: Record<string, string> = {}): CliProcess {
  let out = '';
  let err = '';
  const proc = spawn(path.join(REPO, 'bin/tessera'), args, {
    env: { ...process.env, TESSERA_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const gone = () => proc.exitCode !== null || proc.signalCode !== null;
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    async waitForOutput(what, check, ms = 60_000) {
      try {
        await waitFor(
          () => {
            if (gone()) throw new Error('exited');
            return check(out);
          },
          ms,
          100,
        );
      } catch {
        throw new Error(
          `${what}: not seen (exit ${proc.exitCode ?? proc.signalCode ?? 'running'})\n--- stdout\n${out}\n--- stderr\n${err}`,
        );
      }
      if (!check(out)) throw new Error(`${what}: the command exited\n${out}\n${err}`);
    },
    exited: () => exited,
    async stop(signal = 'SIGTERM') {
      if (!gone()) proc.kill(signal);
      return exited;
    },
  };
}

export interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall-clock ms from spawn to exit. */
  readonly ms: number;
}

/** Spawns `tessera ...args`; rejects if it has not exited within `deadlineMs` (it is then killed). */
export function runCli(
  args: readonly string[],
  o: { cwd?: string; env?: Record<string, string>; deadlineMs?: number } = {},
): Promise<Finished> {
  const started = Date.now();
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: o.cwd,
    env: { ...process.env, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadlineMs = o.deadlineMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`tessera ${args.join(' ')} still running after ${deadlineMs} ms\n${stderr}`),
      );
    }, deadlineMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      // Streams may still hold the last chunk: wait for them to end.
      let open = 2;
      const end = () => {
        if (--open === 0) resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
      };
      if (child.stdout.readableEnded) end();
      else child.stdout.once('end', end);
      if (child.stderr.readableEnded) end();
      else child.stderr.once('end', end);
    });
  });
}
