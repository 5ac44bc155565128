// Starts a real `tessera agent run` process for black-box tests.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from './ports.ts';
import { REPO, type ServerProcess } from './server-process.ts';
import { bundlePem } from './stand-in-agent.ts';

export interface AgentProcess {
  readonly dataDir: string;
  readonly socketPath: string;
  proc: ChildProcess;
  output(): string;
  stop(): Promise<number | null>;
  kill(): Promise<void>;
  /**
   * Starts again on the same data dir, as an operator restarts a running agent: without the join
   * token and without the bootstrap bundle (the data dir holds the SVID and bundle); pass either
   * in `extraArgs` to add it.
   */
  restart(extraArgs?: string[]): Promise<void>;
  /** The bootstrap trust bundle file given at the first start (for a restart that passes it). */
  readonly bundleFile: string;
  exited(): Promise<number | null>;
}

export async function startAgent(
  server: ServerProcess,
  o: {
    joinToken?: string;
    args?: string[];
    dataDir?: string;
    socketPath?: string;
    /** false: return once the process is spawned (for agents that should fail or be stopped early). */
    ready?: boolean;
    /** Bootstrap from this URL instead of a bundle file (--trust-bundle-url). */
    trustBundleUrl?: string;
    env?: Record<string, string>;
    /** How long to wait for "ready" (default 90 s: a busy machine starts processes slowly). */
    readyWithinMs?: number;
  } = {},
): Promise<AgentProcess> {
  const dataDir = o.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'tessera-agent-'));
  // The socket lives outside the private (0700) data dir, so workloads of any uid can reach it.
  const socketPath = o.socketPath ?? path.join(publicApiDir(), 'api.sock');
  const bundleFile = path.join(dataDir, 'bootstrap-bundle.pem');
  writeFileSync(bundleFile, await bundlePem(server.adminSocket));
  // Through bin/tessera, as operators start it (it sets the agent's V8 memory options).
  const base = [
    'agent',
    'run',
    '--server',
    server.apiAddr,
    '--trust-domain',
    server.trustDomain,
    '--workload-socket',
    socketPath,
    '--data-dir',
    dataDir,
  ];
  let out = '';
  const a: AgentProcess = {
    dataDir,
    socketPath,
    bundleFile,
    proc: undefined as unknown as ChildProcess,
    output: () => out,
    async stop() {
      if (gone()) return a.proc.exitCode;
      const done = a.exited();
      a.proc.kill('SIGTERM');
      return done;
    },
    async kill() {
      if (a.proc.exitCode !== null || a.proc.signalCode !== null) return;
      const done = a.exited();
      a.proc.kill('SIGKILL');
      await done;
    },
    exited() {
      if (gone()) return Promise.resolve(a.proc.exitCode);
      return new Promise((r) => a.proc.once('exit', (code) => r(code)));
    },
    async restart(extra = []) {
      await launch([...base, ...extra]);
    },
  };
  const gone = () => a.proc.exitCode !== null || a.proc.signalCode !== null;
  const launch = async (args: string[], ready = true) => {
    // Only this run's output counts (a restart follows earlier output).
    const from = out.length;
    a.proc = spawn(path.join(REPO, 'bin/tessera'), args, {
      env: { ...process.env, TESSERA_LOG_LEVEL: 'info', ...o.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    a.proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    a.proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    if (!ready) return;
    const exited = a.exited().then((code) => {
      throw new Error(`agent exited (${code}): ${out}`);
    });
    exited.catch(() => {});
    await Promise.race([
      waitFor(
        () => gone() || (out.slice(from).includes('tessera agent ready') && existsSync(socketPath)),
        o.readyWithinMs ?? 90_000,
      ).then(() => (gone() ? exited : undefined)),
      exited,
    ]).catch(async (e: unknown) => {
      // Not left running behind the failed start: nobody else holds the process to stop it.
      await a.kill();
      throw e;
    });
  };
  await launch(
    [
      ...base,
      ...(o.trustBundleUrl
        ? ['--trust-bundle-url', o.trustBundleUrl]
        : ['--trust-bundle', bundleFile]),
      ...(o.joinToken ? ['--join-token', o.joinToken] : []),
      ...(o.args ?? []),
    ],
    o.ready ?? true,
  );
  return a;
}

/** A fresh directory for a Workload API socket, outside any private (0700) data dir. */
export function publicApiDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-api-'));
  chmodSync(dir, 0o755);
  return dir;
}
