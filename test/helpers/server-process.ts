// Starts a real `tessera server run` process for black-box tests.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { freePort, waitFor } from './ports.ts';

export const REPO = path.resolve(import.meta.dirname, '../..');
export const CLI = path.join(REPO, 'src/cli/main.ts');
/** A server loads and type-strips its whole module tree first: on a busy machine, many seconds. */
const READY_WITHIN_MS = 90_000;

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
  // The ports were free a moment ago, not reserved: another process on this busy machine may bind
  // one first (then this server exits naming it). Only then is a start tried again, on new ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(o);
    } catch (e) {
      if (!(e instanceof PortTakenError) || attempt >= 3) throw e;
    }
  }
}

/** Our freshly chosen port was bound by someone else before the server could bind it. */
class PortTakenError extends Error {}

async function startOnce(o: ServerOptions): Promise<ServerProcess> {
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
    const from = out.length;
    sp.proc = spawn(process.execPath, [CLI, 'server', 'run', '--config', configFile], {
      env: { ...process.env, ...o.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    sp.proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    sp.proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    let gone = false;
    const exited = new Promise<never>((_, reject) =>
      sp.proc.once('exit', (code, signal) => {
        gone = true;
        reject(new Error(`server exited (${code ?? signal})`));
      }),
    );
    exited.catch(() => {});
    // Ready, and this process is the one answering: it printed that it serves on its addresses
    // (another server may have taken the health port, and answer /readyz for it).
    const ready = waitFor(
      async () =>
        gone ||
        ((config.listen !== sp.apiAddr ||
          out.slice(from).includes(`tessera server ready: api ${sp.apiAddr},`)) &&
          (await fetch(`http://${sp.healthAddr}/readyz`)).status === 200),
      READY_WITHIN_MS,
    );
    try {
      await Promise.race([ready, exited]);
      if (gone) await exited;
    } catch (e) {
      // Not left running behind the failed start: nobody else holds the process to stop it.
      await sp.kill();
      const text = out.slice(from);
      const message = `server did not become ready: ${(e as Error).message}\n${out}`;
      const taken = (addr: string, flag: string) =>
        text.includes(`on ${addr} (${flag}): the address is already in use`);
      if (
        (config.listen === sp.apiAddr && taken(sp.apiAddr, '--listen')) ||
        (config.health_listen === sp.healthAddr && taken(sp.healthAddr, '--health-listen'))
      )
        throw new PortTakenError(message);
      throw new Error(message);
    }
  };
  await launch();
  return sp;
}
