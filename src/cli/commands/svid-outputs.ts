// What `svid watch` does besides printing, for programs that only read files (like SPIRE's
// spiffe-helper or Teleport tbot's outputs): after each write of the SVID files it runs a command
// or signals a process, and it keeps a JWT-SVID file fresh.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { writeFileAtomic } from '../../crypto/keys/atomic-write.ts';
import { InvalidArgumentError, isTesseraError } from '../../core/errors.ts';
import { Backoff, defaultSleep, type WorkloadClient } from '../../client/workload/index.ts';
import type { Printer } from '../output.ts';
import { readBounded, TooLargeError } from '../bounded-read.ts';

export interface OutputFlags {
  write?: string;
  exec?: string;
  signal?: string;
  pidFile?: string;
  jwtAudience?: string[];
  jwtFile?: string;
}

/** What to do after the SVID files are written. */
export type Reload =
  | { kind: 'none' }
  | { kind: 'exec'; command: string }
  | { kind: 'signal'; signal: NodeJS.Signals; pidFile: string };

export interface WatchOutputs {
  dir: string | undefined;
  reload: Reload;
  jwt: { audience: string[]; file: string } | undefined;
}

/** Checks the flag combinations; every mistake names the flag. */
export function compileOutputs(f: OutputFlags): WatchOutputs {
  if (f.exec !== undefined && (f.signal !== undefined || f.pidFile !== undefined)) {
    throw new InvalidArgumentError('--exec cannot be combined with --signal/--pid-file');
  }
  if ((f.signal === undefined) !== (f.pidFile === undefined)) {
    throw new InvalidArgumentError('--signal and --pid-file go together');
  }
  if ((f.exec !== undefined || f.signal !== undefined) && f.write === undefined) {
    throw new InvalidArgumentError(
      `${f.exec !== undefined ? '--exec' : '--signal'} needs --write (it runs after the files are written)`,
    );
  }
  if ((f.jwtAudience === undefined) !== (f.jwtFile === undefined)) {
    throw new InvalidArgumentError('--jwt-audience and --jwt-file go together');
  }
  let reload: Reload = { kind: 'none' };
  if (f.exec !== undefined) {
    if (f.exec.trim() === '') throw new InvalidArgumentError('--exec: empty command');
    reload = { kind: 'exec', command: f.exec };
  } else if (f.signal !== undefined && f.pidFile !== undefined) {
    reload = { kind: 'signal', signal: signalName(f.signal), pidFile: f.pidFile };
  }
  return {
    dir: f.write,
    reload,
    jwt:
      f.jwtAudience !== undefined && f.jwtFile !== undefined
        ? { audience: f.jwtAudience, file: f.jwtFile }
        : undefined,
  };
}

/** `HUP`, `SIGHUP` or `sighup` → `SIGHUP`; anything else is refused. */
export function signalName(text: string): NodeJS.Signals {
  const name = (/^sig/i.test(text) ? text : `SIG${text}`).toUpperCase();
  if (!Object.hasOwn(constants.signals, name) || name === 'SIGKILL' || name === 'SIGSTOP') {
    throw new InvalidArgumentError(
      `--signal: "${text}" is not a signal name to reload with (e.g. HUP, USR1, TERM)`,
    );
  }
  return name as NodeJS.Signals;
}

/**
 * Runs the reload after a write and resolves when it is done: a command has exited (so the files
 * are never replaced while it runs, and it runs exactly once per write, never overlapping), a
 * signal has been sent. Failures are reported on stderr and do not stop the watch: the next
 * rotation tries again.
 */
export async function runReload(reload: Reload, out: Printer, signal: AbortSignal): Promise<void> {
  if (reload.kind === 'exec') await runCommand(reload.command, out, signal);
  else if (reload.kind === 'signal') await sendSignal(reload, out);
}

async function runCommand(command: string, out: Printer, signal: AbortSignal): Promise<void> {
  // A shell, so `--exec 'nginx -s reload'` works as typed. Its output goes to our stderr: stdout
  // carries the watch's own lines, which scripts read.
  const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d: Buffer) => out.note(d.toString().trimEnd()));
  child.stderr.on('data', (d: Buffer) => out.note(d.toString().trimEnd()));
  // On SIGINT/SIGTERM of the watch, the command is asked to stop too, and waited for.
  const stop = (): void => void child.kill('SIGTERM');
  signal.addEventListener('abort', stop, { once: true });
  try {
    const status = await new Promise<string>((resolve) => {
      child.once('error', (e) => resolve(`could not start: ${e.message}`));
      child.once('close', (code, sig) =>
        resolve(code !== null ? `exited with status ${code}` : `killed by ${sig}`),
      );
    });
    out.note(`exec: \`${command}\` ${status}`);
  } finally {
    signal.removeEventListener('abort', stop);
  }
}

/** The pid file is read at every reload: the process may have restarted with a new pid. */
async function sendSignal(
  r: { signal: NodeJS.Signals; pidFile: string },
  out: Printer,
): Promise<void> {
  let pid: number;
  try {
    const text = (await readBounded(r.pidFile, 64)).toString('utf8').trim();
    if (!/^[1-9][0-9]{0,9}$/.test(text)) throw new Error(`no pid in it ("${text.slice(0, 20)}")`);
    pid = Number(text);
  } catch (e) {
    const why = e instanceof TooLargeError ? 'longer than a pid' : (e as Error).message;
    out.note(`warning: --pid-file ${r.pidFile}: ${why}; no signal sent`);
    return;
  }
  try {
    process.kill(pid, r.signal);
    out.note(`signal: sent ${r.signal} to pid ${pid}`);
  } catch (e) {
    out.note(`warning: cannot send ${r.signal} to pid ${pid}: ${(e as Error).message}`);
  }
}

/**
 * Keeps `file` holding a current JWT-SVID (the default identity's) for `audience`: fetched at
 * once, then again when half its lifetime has passed (as SPIRE agents rotate), written
 * atomically with mode 0600 (a bearer token is a secret). A failed fetch is retried with backoff;
 * the previous token stays in place meanwhile. Resolves when `signal` aborts.
 */
export async function keepJwtFile(
  client: WorkloadClient,
  jwt: { audience: string[]; file: string },
  out: Printer,
  signal: AbortSignal,
  now: () => number = Date.now,
): Promise<void> {
  const backoff = new Backoff();
  while (!signal.aborted) {
    let delay: number;
    try {
      const fetchedAt = now();
      const svid = await client.fetchJWTSVID({ audience: jwt.audience }, { signal });
      await writeFileAtomic(jwt.file, svid.token + '\n', 0o600);
      backoff.reset();
      const start = Math.min(svid.issuedAt ?? fetchedAt, fetchedAt);
      const refreshAt = start + (svid.expiresAt - start) / 2;
      out.note(
        `jwt: wrote ${jwt.file} (${svid.spiffeId}, expires ${new Date(svid.expiresAt).toISOString()})`,
      );
      delay = Math.max(1000, refreshAt - now());
    } catch (e) {
      if (signal.aborted) return;
      delay = backoff.next();
      const why = isTesseraError(e) || e instanceof Error ? e.message : String(e);
      out.note(`warning: jwt: ${why}; retrying in ${Math.ceil(delay / 1000)}s`);
    }
    await defaultSleep(delay, signal);
  }
}
