// The set-up the proxy's black-box tests share (docs/injection.md): a real server; secrets put and
// the access objects (server workloads, credential providers, access policies) created through
// the real CLI; a real agent whose config file has a `proxy` block — local listeners on free
// ports, by server workload name — serving this process's uid the client identities. Then the
// test drives unmodified clients against it, and `stop()` ends everything.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { adminClients, type AdminClients } from './admin.ts';
import type { AgentProcess } from './agent-process.ts';
import { runCli, type Finished } from './cli-process.ts';
import { freePort, waitFor } from './ports.ts';
import { CLI, startServer, type ServerOptions, type ServerProcess } from './server-process.ts';
import { DEADLINE_MS, startServingAgent, type AgentOptions } from './serving-agent.ts';

/** `tessera access-policy import`'s document (docs/access.md "The access document"). */
export interface AccessDocument {
  readonly server_workloads?: readonly Record<string, unknown>[];
  readonly credential_providers?: readonly Record<string, unknown>[];
  readonly access_policies?: readonly Record<string, unknown>[];
}

/** A secret's value for a provider with `format: username-password` (docs/access.md). */
export function login(username: string, password: string): string {
  return JSON.stringify({ username, password });
}

/** An access document's static-secret provider presenting `secret` as a username and password. */
export function staticLogin(name: string, secret = name): Record<string, unknown> {
  return { name, type: 'static-secret', config: { secret, format: 'username-password' } };
}

/** An access document's allow policy `me-SERVER`: `client` to `server`, `provider`'s credential. */
export function grant(client: string, server: string, provider: string): Record<string, unknown> {
  return { name: `me-${server}`, client, server, credential_provider: provider };
}

export interface AuditRecord {
  readonly action: string;
  readonly correlationId: string;
  readonly details: Record<string, unknown>;
}

export interface ProxyStackOptions {
  /** Names the temporary directory (tessera-proxy-NAME-…). */
  readonly name: string;
  readonly server?: ServerOptions;
  /** SPIFFE IDs this process's uid gets (entries under the agent); the start waits for the first. */
  readonly clients?: readonly string[];
  /** Put with `tessera secret put NAME --from-stdin`, in order. */
  readonly secrets?: Readonly<Record<string, string>>;
  /**
   * Imported in one `tessera access-policy import --file` (after the secrets); one that needs
   * what only `beforeAgent` makes (an upstream's port, a file in `dir`) is imported there.
   */
  readonly access?: AccessDocument;
  /** More CLI steps before the agent starts (after the secrets and the access document). */
  readonly beforeAgent?: (stack: ProxyAdmin) => Promise<void>;
  /** A local listener on a free 127.0.0.1 port per server workload named here. */
  readonly listeners?: readonly string[];
  /** The rest of the agent config's `proxy` block (http_listen, transparent_listen, …). */
  readonly proxy?: Record<string, unknown>;
  readonly agent?: Omit<AgentOptions, 'joinToken'>;
}

/** The CLI against the stack's server, and its temporary directory. */
export interface ProxyAdmin {
  readonly dir: string;
  readonly server: ServerProcess;
  readonly admins: AdminClients;
  /** `tessera ARGS` against the server's admin socket. */
  cli(...args: string[]): Promise<Finished>;
  /** `tessera ARGS`, asserted to exit 0; its stdout. */
  ok(...args: string[]): Promise<string>;
  /** `tessera secret put NAME --from-stdin` with `value` on stdin (never on a command line). */
  putSecret(name: string, value: string): Promise<void>;
  /** `tessera access-policy import --file` of `access` (written to the directory). */
  importAccess(access: AccessDocument): Promise<void>;
  /** `tessera audit list FILTER --output json`: the records. */
  audit(...filter: string[]): Promise<AuditRecord[]>;
  /**
   * The three records (request → authorization → credential) of the first `access.credential`
   * record `pick` accepts, waiting (bounded) for the agent's batched reports of cached uses.
   */
  auditChain(pick: (r: AuditRecord) => boolean): Promise<AuditRecord[]>;
}

export interface ProxyStack extends ProxyAdmin {
  readonly agent: AgentProcess;
  readonly agentSpiffeId: string;
  /** The agent's config file (the `--config` it was started with; again for a restart). */
  readonly agentConfig: string;
  /** The local listener's port for `serverWorkload`. */
  port(serverWorkload: string): number;
  /** Rewrites the agent's config file with `proxy` merged into its proxy block. */
  reconfigure(proxy: Record<string, unknown>): void;
  /** Stops the agent and the server, removes the directory. */
  stop(): Promise<void>;
}

export async function startProxyStack(o: ProxyStackOptions): Promise<ProxyStack> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `tessera-proxy-${o.name}-`));
  let server: ServerProcess | undefined;
  let agent: AgentProcess | undefined;
  try {
    server = await startServer(o.server);
    const admin = proxyAdmin(dir, server);
    for (const [name, value] of Object.entries(o.secrets ?? {})) await admin.putSecret(name, value);
    if (o.access !== undefined) await admin.importAccess(o.access);
    await o.beforeAgent?.(admin);

    const ports = new Map<string, number>();
    for (const name of o.listeners ?? []) ports.set(name, await freePort());
    let proxy: Record<string, unknown> = {
      ...o.proxy,
      ...(ports.size > 0
        ? {
            listeners: [...ports].map(([sw, port]) => ({
              server_workload: sw,
              listen: `127.0.0.1:${port}`,
            })),
          }
        : {}),
    };
    const agentConfig = path.join(dir, 'agent.yaml');
    const write = () =>
      writeFileSync(
        agentConfig,
        // trust_domain and server_address too: `tessera agent proxy rules --config` reads it.
        stringify({ trust_domain: server!.trustDomain, server_address: server!.apiAddr, proxy }),
      );
    write();
    const started = await startServingAgent(server, admin.admins, o.clients ?? [], {
      ...o.agent,
      args: ['--config', agentConfig, ...(o.agent?.args ?? [])],
    });
    agent = started.agent;
    const running = agent;
    const stopped = server;
    return {
      ...admin,
      agent: running,
      agentSpiffeId: started.agentSpiffeId,
      agentConfig,
      port(sw) {
        const port = ports.get(sw);
        if (port === undefined) throw new Error(`no local listener for ${sw}`);
        return port;
      },
      reconfigure(more) {
        proxy = { ...proxy, ...more };
        write();
      },
      async stop() {
        await running.stop();
        await stopped.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    // Nobody else holds these to stop them: a failed start leaves nothing running.
    await agent?.kill();
    await server?.kill();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

function proxyAdmin(dir: string, server: ServerProcess): ProxyAdmin {
  const env = { TESSERA_ADMIN_SOCKET: server.adminSocket };
  const cli = (...args: string[]) => runCli(args, { env, deadlineMs: 90_000 });
  const ok = async (...args: string[]) => {
    const r = await cli(...args);
    assert.equal(r.code, 0, `tessera ${args.join(' ')}\n${r.stderr}`);
    return r.stdout;
  };
  const audit = async (...filter: string[]) =>
    (
      JSON.parse(await ok('audit', 'list', ...filter, '--output', 'json')) as {
        records: AuditRecord[];
      }
    ).records;
  return {
    dir,
    server,
    admins: adminClients(server.adminSocket),
    cli,
    ok,
    audit,
    putSecret: (name, value) =>
      new Promise<void>((resolve, reject) => {
        const child = spawn(process.execPath, [CLI, 'secret', 'put', name, '--from-stdin'], {
          env: { ...process.env, ...env },
          stdio: ['pipe', 'ignore', 'pipe'],
          timeout: 90_000,
        });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.once('error', reject);
        child.once('close', (code) =>
          code === 0 ? resolve() : reject(new Error(`tessera secret put ${name}: ${stderr}`)),
        );
        child.stdin.end(value);
      }),
    async importAccess(access) {
      const file = path.join(dir, 'access.yaml');
      writeFileSync(file, stringify(access));
      await ok('access-policy', 'import', '--file', file);
    },
    async auditChain(pick) {
      let chain: AuditRecord[] = [];
      let seen: AuditRecord[] = [];
      await waitFor(async () => {
        seen = await audit('--action', 'access.credential');
        const one = seen.find(pick);
        if (one === undefined) return false;
        chain = await audit('--correlation-id', one.correlationId);
        return chain.length === 3;
      }, DEADLINE_MS).catch(() =>
        assert.fail(`no such access.credential record with its chain: ${JSON.stringify(seen)}`),
      );
      assert.deepEqual(
        chain.map((r) => r.action),
        ['access.request', 'access.authorization', 'access.credential'],
      );
      return chain;
    },
  };
}
