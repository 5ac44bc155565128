// Starts a real `tessera server run` process for black-box tests.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { freePort, waitFor } from './ports.ts';

export const REPO = path.resolve(import.meta.dirname, '../..');
export const CLI = path.join(REPO, 'src/cli/main.ts');

export interface ServerProcess {
  readonly dataDir: string;
  readonly apiAddr: string;
  readonly healthAddr: string;
  readonly adminSocket: string;
  readonly trustDomain: string;
  proc: ChildProcess;
  output(): string;
  /** Graceful stop (SIGTERM), waits for exit. */
  stop(): Promise<number | null>;
  /** kill -9, waits for exit. */
  kill(): Promise<void>;
  /** Starts the process again on the same data dir and config. */
  restart(): Promise<void>;
}

export interface ServerOptions {
  trustDomain?: string;
  datastoreUrl?: string;
  dataDir?: string;
  /** Extra YAML config keys. */
  config?: Record<string, unknown>;
  env?: Record<string, string>;
}

export async function startServer(o: ServerOptions = {}): Promise<ServerProcess> {
  const dataDir = o.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'tessera-srv-'));
  const trustDomain = o.trustDomain ?? 'example.org';
  const apiPort = await freePort();
  const healthPort = await freePort();
  const config = {
    trust_domain: trustDomain,
    data_dir: dataDir,
    listen: `127.0.0.1:${apiPort}`,
    health_listen: `127.0.0.1:${healthPort}`,
    ...(o.datastoreUrl ? { datastore_url: o.datastoreUrl } : {}),
    log_level: 'warn',
    // Tests attest and mint in bursts from one address; the limits have tests of their own
    // (server-suite), which set them explicitly.
    rate_limit: { attestation_per_second: 0, signing_per_second: 0 },
    ...o.config,
  };
  const configFile = path.join(dataDir, 'server.yaml');
  writeFileSync(configFile, stringify(config));
  let out = '';
  const sp: ServerProcess = {
    dataDir,
    apiAddr: `127.0.0.1:${apiPort}`,
    healthAddr: `127.0.0.1:${healthPort}`,
    adminSocket: path.join(dataDir, 'admin.sock'),
    trustDomain,
    proc: undefined as unknown as ChildProcess,
    output: () => out,
    async stop() {
      if (sp.proc.exitCode !== null || sp.proc.signalCode !== null) return sp.proc.exitCode;
      const exited = new Promise<number | null>((r) => sp.proc.once('exit', (code) => r(code)));
      sp.proc.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (sp.proc.exitCode !== null || sp.proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => sp.proc.once('exit', () => r()));
      sp.proc.kill('SIGKILL');
      await exited;
    },
    async restart() {
      await launch();
    },
  };
  const launch = async () => {
    sp.proc = spawn(process.execPath, [CLI, 'server', 'run', '--config', configFile], {
      env: { ...process.env, ...o.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    sp.proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    sp.proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<never>((_, reject) =>
      sp.proc.once('exit', (code, signal) =>
        reject(new Error(`server exited (${code ?? signal})`)),
      ),
    );
    exited.catch(() => {});
    const ready = waitFor(
      async () => (await fetch(`http://${sp.healthAddr}/readyz`)).status === 200,
      30_000,
    );
    await Promise.race([ready, exited]).catch((e: unknown) => {
      throw new Error(`server did not become ready: ${(e as Error).message}\n${out}`);
    });
  };
  await launch();
  return sp;
}
