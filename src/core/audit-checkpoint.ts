// Signed checkpoints of the audit head, kept outside the database (a file, an HTTP collector):
// whoever rewrites the audit table and its head cannot make the chain end before, or differ
// from, the last checkpoint without the checkpoint key. Ed25519 over the canonical JSON of every
// field but `sig`. Pure: the key objects come from the caller.
import { type KeyObject, createHash, sign, verify } from 'node:crypto';
import { canonicalJson } from './audit.ts';

/** The checkpoint key's file name in the server's data dir. */
export const CHECKPOINT_KEY_FILE = 'audit-checkpoint.key';

export interface AuditCheckpoint {
  readonly v: 1;
  readonly trustDomain: string;
  readonly serverId: string;
  /** The head: its seq (0 = empty log) and the hash of that record. */
  readonly seq: number;
  readonly hash: string;
  /** Epoch ms when it was signed. */
  readonly time: number;
  /** keyIdOf the signing key's public half. */
  readonly keyId: string;
  /** base64url Ed25519 signature. */
  readonly sig: string;
}

/** A short, stable name for a public key: sha-256 of its SPKI DER, first 16 hex digits. */
export function keyIdOf(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

export function signCheckpoint(
  body: Omit<AuditCheckpoint, 'v' | 'keyId' | 'sig'>,
  privateKey: KeyObject,
  publicKey: KeyObject,
): AuditCheckpoint {
  const unsigned = { v: 1 as const, ...body, keyId: keyIdOf(publicKey) };
  const sig = sign(null, Buffer.from(canonicalJson(unsigned)), privateKey).toString('base64url');
  return { ...unsigned, sig };
}

export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
}

const MAX_LINE = 4096;

/**
 * Parses a checkpoint file (JSON lines) and checks every signature with `publicKey`. A line that
 * is not a checkpoint, is signed by another key, or whose signature fails is an error naming the
 * line: a checkpoint file is evidence, so nothing in it is skipped silently. Blank lines and a
 * torn last line (a crash mid-write: no newline at the end) are ignored.
 */
export function parseCheckpoints(text: string, publicKey: KeyObject): AuditCheckpoint[] {
  const keyId = keyIdOf(publicKey);
  const lines = text.split('\n');
  const torn = !text.endsWith('\n') ? lines.length - 1 : -1;
  const out: AuditCheckpoint[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '' || i === torn) return;
    const at = `line ${i + 1}`;
    if (line.length > MAX_LINE) throw new CheckpointError(`${at}: longer than ${MAX_LINE} bytes`);
    let c: AuditCheckpoint;
    try {
      c = JSON.parse(line) as AuditCheckpoint;
    } catch {
      throw new CheckpointError(`${at}: not JSON`);
    }
    if (
      c?.v !== 1 ||
      typeof c.trustDomain !== 'string' ||
      typeof c.serverId !== 'string' ||
      !Number.isSafeInteger(c.seq) ||
      c.seq < 0 ||
      typeof c.hash !== 'string' ||
      !/^[0-9a-f]{64}$/.test(c.hash) ||
      !Number.isSafeInteger(c.time) ||
      typeof c.sig !== 'string'
    )
      throw new CheckpointError(`${at}: not a version 1 audit checkpoint`);
    if (c.keyId !== keyId)
      throw new CheckpointError(`${at}: signed by key ${String(c.keyId)}, not ${keyId}`);
    const { sig, ...unsigned } = c;
    const payload = {
      v: unsigned.v,
      trustDomain: unsigned.trustDomain,
      serverId: unsigned.serverId,
      seq: unsigned.seq,
      hash: unsigned.hash,
      time: unsigned.time,
      keyId: unsigned.keyId,
    };
    if (
      !verify(null, Buffer.from(canonicalJson(payload)), publicKey, Buffer.from(sig, 'base64url'))
    )
      throw new CheckpointError(`${at}: bad signature`);
    out.push({ ...payload, sig });
  });
  return out;
}
