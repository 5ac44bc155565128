// Audit records are hash-chained: each record's hash covers its content and the previous hash,
// so deleting, reordering or editing any record breaks verification from that point on.
import { createHash } from 'node:crypto';

export type AuditOutcome = 'success' | 'denied' | 'error';

export interface AuditEvent {
  /** Epoch ms. */
  readonly time: number;
  /** Who: a SPIFFE ID, "local-admin", or "anonymous". */
  readonly actor: string;
  /** What, as a stable verb: entry.create, agent.attest, svid.x509.mint, ... */
  readonly action: string;
  /** On what: an entry id, a SPIFFE ID, ... */
  readonly target: string;
  readonly outcome: AuditOutcome;
  readonly correlationId: string;
  /** Extra facts, already redacted (see redactDetails). */
  readonly details: Readonly<Record<string, unknown>>;
}

export interface AuditRecord extends AuditEvent {
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
}

export const GENESIS_HASH = '0'.repeat(64);

/** Canonical JSON: keys sorted at every level, so the hash does not depend on insertion order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']';
  const obj = value as Record<string, unknown>;
  let out = '{';
  for (const k of Object.keys(obj).sort()) {
    const v = obj[k];
    if (v === undefined) continue;
    if (out.length > 1) out += ',';
    out += JSON.stringify(k) + ':' + canonicalJson(v);
  }
  return out + '}';
}

export function auditHash(seq: number, prevHash: string, e: AuditEvent): string {
  return auditHashOf(seq, prevHash, e, canonicalJson(e.details));
}

/**
 * The hash with the details already in canonical JSON (what the store keeps): the same string
 * canonicalJson would make of the whole record, built without walking it again.
 */
export function auditHashOf(
  seq: number,
  prevHash: string,
  e: AuditEvent,
  detailsJson: string,
): string {
  const s = JSON.stringify;
  const body =
    `{"action":${s(e.action)},"actor":${s(e.actor)},"correlationId":${s(e.correlationId)},` +
    `"details":${detailsJson},"outcome":${s(e.outcome)},"prevHash":${s(prevHash)},"seq":${s(seq)},` +
    `"target":${s(e.target)},"time":${s(e.time)}}`;
  return createHash('sha256').update(body).digest('hex');
}

export type ChainCheck = { ok: true; count: number } | { ok: false; seq: number; reason: string };

/**
 * Verifies a run of consecutive records. `prevHash` is the hash before the first one (GENESIS_HASH
 * when starting from seq 1).
 */
export function verifyChain(
  records: Iterable<AuditRecord>,
  start: { prevHash: string; prevSeq: number } = { prevHash: GENESIS_HASH, prevSeq: 0 },
): ChainCheck & { last: { prevHash: string; prevSeq: number } } {
  let { prevHash, prevSeq } = start;
  let count = 0;
  for (const r of records) {
    if (r.seq !== prevSeq + 1) {
      return {
        ok: false,
        seq: r.seq,
        reason: `expected seq ${prevSeq + 1}`,
        last: { prevHash, prevSeq },
      };
    }
    if (r.prevHash !== prevHash) {
      return {
        ok: false,
        seq: r.seq,
        reason: 'previous hash does not match',
        last: { prevHash, prevSeq },
      };
    }
    if (auditHash(r.seq, r.prevHash, r) !== r.hash) {
      return {
        ok: false,
        seq: r.seq,
        reason: 'record content does not match its hash',
        last: { prevHash, prevSeq },
      };
    }
    prevHash = r.hash;
    prevSeq = r.seq;
    count++;
  }
  return { ok: true, count, last: { prevHash, prevSeq } };
}

const SECRET_KEYS = /token|secret|password|private|key$|^key|authorization|cookie|credential/i;

/** How deep redactDetails looks; anything deeper is dropped rather than passed through unchecked. */
const MAX_REDACT_DEPTH = 4;

/**
 * Redacts secrets before any sink. Values under secret-looking keys become "[redacted]", also
 * inside arrays; objects nested deeper than MAX_REDACT_DEPTH become "[truncated]" (fail closed).
 */
export function redactDetails(
  details: Record<string, unknown>,
  depth = 0,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(details)) {
    if (SECRET_KEYS.test(k) && !/_id$|Id$|_hash$|Hash$|^keyId$|^kid$|keyType/.test(k))
      out[k] = '[redacted]';
    else out[k] = redactValue(v, depth + 1);
  }
  return out;
}

function redactValue(v: unknown, depth: number): unknown {
  if (!v || typeof v !== 'object') return v;
  if (depth > MAX_REDACT_DEPTH) return '[truncated]';
  if (Array.isArray(v)) return v.map((x) => redactValue(x, depth + 1));
  return redactDetails(v as Record<string, unknown>, depth);
}
