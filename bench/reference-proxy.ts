// A reference for the proxy benches: HAProxy (Debian's `haproxy`, a C proxy), one thread, put in
// the same path as the agent — between the same client and the same server — relaying TCP, or
// HTTP with the credential header set. What it reaches on the machine is what one more hop on
// loopback costs whatever the proxy, so the agent's ratio is read beside it. It decides nothing,
// injects no login and scrubs nothing: it does less than the agent.
// Optional: where HAProxy is not installed the benches print how to get it and go on.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface ReferenceProxy {
  readonly port: number;
  readonly pid: number;
  /** "HAProxy 2.6.12 (tcp, 1 thread)". */
  readonly label: string;
  stop(): void;
}

/** Without HAProxy on the machine: what the bench prints instead of the reference figure. */
export const NO_REFERENCE = 'not measured: HAProxy is not installed (apt-get install haproxy)';

const CANDIDATES = ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy', 'haproxy'];

function binary(): { path: string; version: string } | undefined {
  for (const p of CANDIDATES) {
    try {
      const out = execFileSync(p, ['-v'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      const version = /version (\S+)/.exec(out)?.[1]?.split('-')[0] ?? '?';
      return { path: p, version };
    } catch {
      // not this one
    }
  }
  return undefined;
}

/**
 * HAProxy relaying 127.0.0.1:<port> to 127.0.0.1:upstreamPort; in `http` mode with keep-alive on
 * both sides and `setHeader` ([name, value]) set on every request. Undefined without HAProxy.
 */
export async function startReferenceProxy(
  mode: 'tcp' | 'http',
  upstreamPort: number,
  setHeader?: readonly [string, string],
): Promise<ReferenceProxy | undefined> {
  const bin = binary();
  if (!bin) return undefined;
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-bench-haproxy-'));
  const header = setHeader ? `  http-request set-header ${setHeader[0]} "${setHeader[1]}"\n` : '';
  const config =
    `global\n  nbthread 1\n  maxconn 4096\n` +
    `defaults\n  mode ${mode}\n  timeout connect 5s\n  timeout client 120s\n  timeout server 120s\n` +
    `frontend bench\n  bind 127.0.0.1:${port}\n${header}  default_backend upstream\n` +
    `backend upstream\n  server s1 127.0.0.1:${upstreamPort}\n`;
  const file = path.join(dir, 'haproxy.cfg');
  writeFileSync(file, config, { mode: 0o600 });
  // -db: stay in the foreground, so that the child is HAProxy itself (its pid, its CPU).
  const child: ChildProcess = spawn(bin.path, ['-db', '-f', file], { stdio: 'ignore' });
  const stop = (): void => {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await listening(port, child);
  } catch (e) {
    stop();
    throw e;
  }
  return {
    port,
    pid: child.pid!,
    label: `HAProxy ${bin.version} (${mode}, 1 thread)`,
    stop,
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once the port accepts a connection (at most 5 s); rejects if HAProxy exits first. */
async function listening(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`haproxy exited (${child.exitCode})`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`haproxy did not listen on 127.0.0.1:${port} within 5 s`);
}
