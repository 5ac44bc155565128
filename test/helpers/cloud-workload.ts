// Workloads of the cloud SDK tests: processes started as another uid with only the environment
// given (and PATH, HOME), and `tessera cloud env` run as that uid the way a user would, its
// variables then handed to the SDK process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { CLI } from './server-process.ts';

export interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runAs(uid: number, args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, {
      uid,
      gid: uid,
      env: { PATH: process.env['PATH'] ?? '', HOME: '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.once('error', reject);
    p.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `tessera cloud env --cloud CLOUD ARGS --output json` as `uid`: the variables it prints. */
export async function cloudEnvAs(
  uid: number,
  cloud: string,
  args: string[],
): Promise<Record<string, string>> {
  const r = await runAs(uid, [CLI, 'cloud', 'env', '--cloud', cloud, '--output', 'json', ...args], {
    TESSERA_LOG_LEVEL: 'silent',
  });
  assert.equal(r.code, 0, `cloud env --cloud ${cloud} ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, string>;
}
