// Test support: a real TesseraServer on a temporary SQLite data dir, and a way to drive the CLI
// in-process with captured output. Used only by src/cli/**/*.test.ts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadServerConfig, TesseraServer } from '../../server/compose/server.ts';
import { run } from '../program.ts';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TestServer {
  dir: string;
  socket: string;
  /** host:port of the public listener ("" without one). */
  publicAddr: string;
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

/** `config`: extra server config keys (written to a config file), e.g. an `sts` block. */
export async function startTestServer(
  options: { config?: Record<string, unknown> } = {},
): Promise<TestServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-cli-'));
  let file: string | undefined;
  if (options.config) {
    file = path.join(dir, 'server.yaml');
    writeFileSync(file, JSON.stringify(options.config)); // JSON is YAML
  }
  const config = loadServerConfig(
    {
      trustDomain: 'example.org',
      dataDir: dir,
      listen: '127.0.0.1:0',
      healthListen: '127.0.0.1:0',
      ...(file ? { config: file } : {}),
    },
    quiet,
  );
  const server = await TesseraServer.create(config);
  const ac = new AbortController();
  const listening = Promise.withResolvers<{ admin: string; public: string }>();
  const done = server.run(ac.signal, (addr) => listening.resolve(addr));
  done.catch((e: unknown) => listening.reject(e));
  const { admin: socket, public: publicAddr } = await listening.promise;
  return {
    dir,
    socket,
    publicAddr,
    cli: (...args) => runCli(args, { TESSERA_ADMIN_SOCKET: socket }),
    stop: async () => {
      ac.abort();
      await done;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
