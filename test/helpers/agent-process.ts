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
  /** Starts again on the same data dir (without the join token: the persisted SVID is reused). */
  restart(extraArgs?: string[]): Promise<void>;
  exited(): Promise<number | null>;
}

export async function startAgent(
  server: ServerProcess,
  o: { joinToken?: string; args?: string[]; dataDir?: string } = {},
): Promise<AgentProcess> {
  const dataDir = o.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'tessera-agent-'));
  // The socket lives outside the private (0700) data dir, so workloads of any uid can reach it.
  const publicDir = mkdtempSync(path.join(os.tmpdir(), 'tessera-api-'));
  chmodSync(publicDir, 0o755);
  const socketPath = path.join(publicDir, 'api.sock');
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
    '--trust-bundle',
    bundleFile,
  ];
  let out = '';
  const a: AgentProcess = {
    dataDir,
    socketPath,
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
  const launch = async (args: string[]) => {
    // Only this run's output counts (a restart follows earlier output).
    const from = out.length;
    a.proc = spawn(path.join(REPO, 'bin/tessera'), args, {
      env: { ...process.env, TESSERA_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    a.proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    a.proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const exited = a.exited().then((code) => {
      throw new Error(`agent exited (${code}): ${out}`);
    });
    exited.catch(() => {});
    await Promise.race([
      waitFor(
        () => out.slice(from).includes('tessera agent ready') && existsSync(socketPath),
        30_000,
      ),
      exited,
    ]);
  };
  await launch([...base, ...(o.joinToken ? ['--join-token', o.joinToken] : []), ...(o.args ?? [])]);
  return a;
}
