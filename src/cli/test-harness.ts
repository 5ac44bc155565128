// Test support: a real TesseraServer on a temporary SQLite data dir, and a way to drive the CLI
// in-process with captured output. Used only by src/cli/**/*.test.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadServerConfig, TesseraServer } from '../server/compose.ts';
import { run } from './program.ts';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TestServer {
  dir: string;
  socket: string;
  cli(...args: string[]): Promise<CliResult>;
  stop(): Promise<void>;
}

const quiet = { TESSERA_LOG_LEVEL: 'silent' };

/** Runs the CLI in-process; `env` replaces the process environment entirely. */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await run(args, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env,
    ...(signal ? { signal } : {}),
  });
  return { code, stdout, stderr };
}

export async function startTestServer(): Promise<TestServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-cli-'));
  const config = loadServerConfig(
    {
      trustDomain: 'example.org',
      dataDir: dir,
      listen: '127.0.0.1:0',
      healthListen: '127.0.0.1:0',
    },
    quiet,
  );
  const server = await TesseraServer.create(config);
  const ac = new AbortController();
  const listening = Promise.withResolvers<string>();
  const done = server.run(ac.signal, (addr) => listening.resolve(addr.admin));
  done.catch((e: unknown) => listening.reject(e));
  const socket = await listening.promise;
  return {
    dir,
    socket,
    cli: (...args) => runCli(args, { TESSERA_ADMIN_SOCKET: socket }),
    stop: async () => {
      ac.abort();
      await done;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
