// Starts a long-running `tessera` command (audit list --follow, svid watch) as a real process,
// so tests can read its output while it runs and stop it with a signal as an operator would.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { REPO } from './server-process.ts';
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
