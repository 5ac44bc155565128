// Test support (imported only by *.test.ts): a CA fixture and an openssl CLI runner.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { KeyType } from '../../../core/authority.ts';
import type { ManagedKey } from '../../key-manager.ts';
import { MemoryKeyManager } from '../../keys/memory-key-manager.ts';
import { createSelfSignedCa } from '../ca.ts';
import { derToPem } from '../pem.ts';

export const HOUR = 3_600_000;
export const NOW = Date.UTC(2030, 0, 1);

export interface TestCa {
  readonly key: ManagedKey;
  readonly certDer: Uint8Array;
}

export async function makeCa(
  type: KeyType = 'ec-p256',
  trustDomain = 'example.org',
  now = NOW,
): Promise<TestCa> {
  const key = await new MemoryKeyManager().generate('ca', type);
  const ca = await createSelfSignedCa({
    key,
    trustDomain,
    notBefore: now - HOUR,
    notAfter: now + 24 * HOUR,
  });
  return { key, certDer: ca.der };
}

export function ecKey(curve = 'P-256'): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: curve }).privateKey;
}

/**
 * Runs openssl with `files` written to a temp dir; returns stdout followed by the text of the
 * `outputs` files it wrote (throws with stderr on failure).
 */
export function openssl(
  args: string[],
  files: Record<string, Uint8Array | string> = {},
  outputs: string[] = [],
): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-openssl-'));
  try {
    for (const [name, data] of Object.entries(files)) writeFileSync(path.join(dir, name), data);
    const out = execFileSync('openssl', args, {
      cwd: dir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return out + outputs.map((f) => readFileSync(path.join(dir, f), 'utf8')).join('');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function opensslText(der: Uint8Array): string {
  return openssl(['x509', '-in', 'c.pem', '-noout', '-text'], { 'c.pem': derToPem(der) });
}

/** `openssl verify` at a fixed time; returns its stdout (contains ": OK" on success). */
export function opensslVerify(
  leaf: Uint8Array,
  roots: Uint8Array[],
  untrusted: Uint8Array[] = [],
  at = NOW,
): string {
  const args = ['verify', '-attime', String(Math.floor(at / 1000)), '-CAfile', 'ca.pem'];
  if (untrusted.length > 0) args.push('-untrusted', 'inter.pem');
  args.push('leaf.pem');
  return openssl(args, {
    'ca.pem': roots.map((r) => derToPem(r)).join(''),
    'inter.pem': untrusted.map((r) => derToPem(r)).join(''),
    'leaf.pem': derToPem(leaf),
  });
}
