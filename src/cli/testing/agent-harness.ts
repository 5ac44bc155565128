// Test support for the workload-side commands: a real TesseraServer and a real TesseraAgent in
// this process. The agent attests with a join token created over the admin socket, trusts the
// server through a PEM bundle file, and serves the Workload API on a socket in a 0755 temporary
// directory, so this test process is an ordinary workload (unix:uid:<uid>). Used only by
// src/cli/**/*.test.ts.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadAgentConfig, TesseraAgent } from '../../agent/compose.ts';
import { WorkloadClient } from '../../client/workload/index.ts';
import { loadServerConfig, TesseraServer } from '../../server/compose/server.ts';
import { run } from '../program.ts';
import { runCli, type CliResult } from './harness.ts';

export const TRUST_DOMAIN = 'example.org';

export interface TestAgentStand {
  /** The server's admin socket. */
  adminSocket: string;
  /** The agent's Workload API socket (a plain path). */
  workloadSocket: string;
  agentSpiffeId: string;
  /** The selector that matches this test process. */
  selfSelector: string;
  /** The CLI with TESSERA_ADMIN_SOCKET set (admin commands). */
  admin(...args: string[]): Promise<CliResult>;
  /** The CLI with SPIFFE_ENDPOINT_SOCKET set to the agent (workload commands). */
  workload(...args: string[]): Promise<CliResult>;
  /** A long-running workload command (svid watch) whose output can be read while it runs. */
  follow(...args: string[]): Following;
  /** Registers an entry for this process under the agent; resolves to the entry ID. */
  registerSelf(spiffeId: string, ...flags: string[]): Promise<string>;
  /** Resolves once the Workload API serves this process an X509-SVID for `spiffeId`. */
  waitForSvid(spiffeId: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface Following {
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Aborts the command's io.signal and resolves to its result. */
  stop(): Promise<CliResult>;
}

const quiet = { TESSERA_LOG_LEVEL: 'silent' };

/** Polls `check` every 100 ms until it returns true; fails after `timeoutMs`. */
export async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const why = last instanceof Error ? ` (last error: ${last.message})` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
}

export async function startTestAgent(): Promise<TestAgentStand> {
  const dirs: string[] = [];
  const tmp = (prefix: string): string => {
    const d = mkdtempSync(path.join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
  const cleanup = () => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  };

  // The server, on an ephemeral port.
  const serverDir = tmp('tessera-cli-server-');
  const server = await TesseraServer.create(
    loadServerConfig(
      {
        trustDomain: TRUST_DOMAIN,
        dataDir: serverDir,
        listen: '127.0.0.1:0',
        healthListen: '127.0.0.1:0',
      },
      quiet,
    ),
  );
  const serverStop = new AbortController();
  const listening = Promise.withResolvers<{ api: string; admin: string }>();
  const serverDone = server.run(serverStop.signal, (addr) => listening.resolve(addr));
  serverDone.catch((e: unknown) => listening.reject(e));
  const { api, admin: adminSocket } = await listening.promise;
  const stopServer = async () => {
    serverStop.abort();
    await serverDone;
  };

  const admin = (...args: string[]) => runCli(args, { TESSERA_ADMIN_SOCKET: adminSocket });
  const adminJson = async (...args: string[]): Promise<Record<string, unknown>> => {
    const r = await admin(...args, '--output', 'json');
    if (r.code !== 0) throw new Error(`tessera ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  };

  let agentStop: AbortController | undefined;
  let agentDone: Promise<void> | undefined;
  try {
    // A join token and the bundle, over the admin socket as an operator would get them.
    const { token, agentSpiffeId } = (await adminJson('token', 'generate')) as {
      token: string;
      agentSpiffeId: string;
    };
    const bundleFile = path.join(tmp('tessera-cli-bundle-'), 'bundle.pem');
    const pem = await admin('bundle', 'show');
    if (pem.code !== 0) throw new Error(`bundle show: ${pem.stderr}`);
    writeFileSync(bundleFile, pem.stdout);

    // The agent: data dir private, socket in a world-readable directory.
    const publicDir = tmp('tessera-cli-api-');
    chmodSync(publicDir, 0o755);
    const workloadSocket = path.join(publicDir, 'api.sock');
    const config = loadAgentConfig(
      {
        server: api,
        trustDomain: TRUST_DOMAIN,
        socket: workloadSocket,
        dataDir: tmp('tessera-cli-agent-'),
        joinToken: token,
        trustBundle: bundleFile,
      },
      quiet,
    );
    const agent = await TesseraAgent.create(config, { env: {} });
    agentStop = new AbortController();
    const ready = Promise.withResolvers<void>();
    agentDone = agent.run(agentStop.signal, () => ready.resolve());
    agentDone.catch((e: unknown) => ready.reject(e));
    await ready.promise;

    const workloadEnv = { SPIFFE_ENDPOINT_SOCKET: `unix://${workloadSocket}` };
    const selfSelector = `unix:uid:${process.getuid?.() ?? 0}`;
    const stand: TestAgentStand = {
      adminSocket,
      workloadSocket,
      agentSpiffeId,
      selfSelector,
      admin,
      workload: (...args) => runCli(args, workloadEnv),
      follow(...args) {
        const ac = new AbortController();
        let stdout = '';
        let stderr = '';
        const done = run(args, {
          stdout: { write: (c: string) => (stdout += c) },
          stderr: { write: (c: string) => (stderr += c) },
          env: workloadEnv,
          signal: ac.signal,
        });
        return {
          stdout: () => stdout,
          stop: async () => {
            ac.abort();
            const code = await done;
            return { code, stdout, stderr };
          },
        };
      },
      async registerSelf(spiffeId, ...flags) {
        const entry = await adminJson(
          'entry',
          'create',
          '--spiffe-id',
          spiffeId,
          '--parent-id',
          agentSpiffeId,
          '--selector',
          selfSelector,
          ...flags,
        );
        return entry.id as string;
      },
      async waitForSvid(spiffeId, timeoutMs = 15_000) {
        const client = new WorkloadClient({ address: `unix://${workloadSocket}` });
        try {
          await waitUntil(
            `an X509-SVID for ${spiffeId}`,
            async () => {
              const ctx = await client.fetchX509Context({ timeoutMs: 2000 });
              return ctx.svids.some((s) => s.spiffeId === spiffeId);
            },
            timeoutMs,
          );
        } finally {
          client.close();
        }
      },
      async stop() {
        agentStop?.abort();
        await agentDone;
        await stopServer();
        cleanup();
      },
    };
    return stand;
  } catch (e) {
    agentStop?.abort();
    await agentDone?.catch(() => {});
    await stopServer().catch(() => {});
    cleanup();
    throw e;
  }
}
