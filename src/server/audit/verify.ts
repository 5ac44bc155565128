// `audit verify`: walks the hash chain from seq 1 to the recorded head (audit_head) and checks
// the head and any signed checkpoints against it. The chain alone proves no record was edited,
// reordered or removed from the middle; the head proves the end was not cut off (unless the head
// was rewritten too); checkpoints kept outside the database prove it up to the last checkpoint.
import { GENESIS_HASH, type AuditRecord, verifyChain } from '../../core/audit.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import type { AuditStore } from '../../store/types.ts';

export const MAX_VERIFY_CHECKPOINTS = 100_000;
const BATCH = 1000;

export interface CheckpointClaim {
  readonly seq: number;
  readonly hash: string;
}

export interface AuditVerification {
  ok: boolean;
  /** Records verified from seq 1 (up to the break when not ok). */
  count: number;
  badSeq: number;
  reason: string;
  head: { seq: number; hash: string };
  /** Sequence numbers known to exist (head, gap or checkpoint) but absent; 0/0 when none. */
  missingFrom: number;
  missingTo: number;
  checkpointsVerified: number;
}

/** Checkpoints: ascending by seq, signatures already checked by the caller. */
export async function verifyAuditLog(
  audit: Pick<AuditStore, 'head' | 'list'>,
  checkpoints: readonly CheckpointClaim[] = [],
): Promise<AuditVerification> {
  if (checkpoints.length > MAX_VERIFY_CHECKPOINTS)
    throw new InvalidArgumentError(`checkpoints: at most ${MAX_VERIFY_CHECKPOINTS}`);
  checkpoints.forEach((c, i) => {
    if (!Number.isSafeInteger(c.seq) || c.seq < 0 || !/^[0-9a-f]{64}$/.test(c.hash))
      throw new InvalidArgumentError(`checkpoints[${i}]: needs a seq and a sha-256 hex hash`);
    if (i > 0 && c.seq < (checkpoints[i - 1] as CheckpointClaim).seq)
      throw new InvalidArgumentError('checkpoints: must be in ascending seq order');
  });
  // Read the head first: rows and head are committed together, so every record up to it is
  // visible below; records appended while we walk are beyond it and not checked this time.
  const head = await audit.head();
  const result = (over: Partial<AuditVerification>): AuditVerification => ({
    ok: true,
    count: 0,
    badSeq: 0,
    reason: '',
    head,
    missingFrom: 0,
    missingTo: 0,
    checkpointsVerified: 0,
    ...over,
  });
  let start = { prevHash: GENESIS_HASH, prevSeq: 0 };
  let cp = 0;
  while (start.prevSeq < head.seq) {
    const batch = (await audit.list({ afterSeq: start.prevSeq }, BATCH)).filter(
      (r) => r.seq <= head.seq,
    );
    if (batch.length === 0) break;
    const check = verifyChain(batch, start);
    if (!check.ok) {
      const gap = check.reason.startsWith('expected seq') && check.seq > start.prevSeq + 1;
      return result({
        ok: false,
        count: check.last.prevSeq,
        badSeq: check.seq,
        reason: gap ? missing(check.last.prevSeq + 1, check.seq - 1) : check.reason,
        ...(gap ? { missingFrom: check.last.prevSeq + 1, missingTo: check.seq - 1 } : {}),
        checkpointsVerified: cp,
      });
    }
    const first = (batch[0] as AuditRecord).seq;
    for (; cp < checkpoints.length; cp++) {
      const c = checkpoints[cp] as CheckpointClaim;
      if (c.seq > check.last.prevSeq) break;
      // seq 0 is the empty log: its hash is the genesis hash.
      const at = c.seq === 0 ? GENESIS_HASH : (batch[c.seq - first]?.hash ?? '');
      if (c.seq >= first || c.seq === 0) {
        if (at !== c.hash)
          return result({
            ok: false,
            count: check.last.prevSeq,
            badSeq: c.seq,
            reason: `the checkpoint at seq ${c.seq} names another hash: the log was rewritten up to there`,
            checkpointsVerified: cp,
          });
      }
    }
    start = check.last;
  }
  const last = start.prevSeq;
  if (last < head.seq) {
    return result({
      ok: false,
      count: last,
      badSeq: last + 1,
      reason: `truncated: ${missing(last + 1, head.seq)} (the recorded head is seq ${head.seq})`,
      missingFrom: last + 1,
      missingTo: head.seq,
      checkpointsVerified: cp,
    });
  }
  if (start.prevHash !== head.hash) {
    return result({
      ok: false,
      count: last,
      badSeq: head.seq,
      reason: `the recorded head's hash differs from record ${head.seq}'s`,
      checkpointsVerified: cp,
    });
  }
  const beyond = checkpoints[checkpoints.length - 1];
  if (beyond && beyond.seq > last) {
    return result({
      ok: false,
      count: last,
      badSeq: last + 1,
      reason: `truncated: the checkpoint at seq ${beyond.seq} is beyond the end of the log (seq ${last}): ${missing(last + 1, beyond.seq)}`,
      missingFrom: last + 1,
      missingTo: beyond.seq,
      checkpointsVerified: cp,
    });
  }
  // Rows past the head that the head does not cover: the head was rewritten backwards.
  const after = await audit.list({ afterSeq: head.seq }, 1);
  const after1 = after[0];
  if (after1 && (await audit.head()).seq < after1.seq) {
    return result({
      ok: false,
      count: last,
      badSeq: after1.seq,
      reason: `record ${after1.seq} lies beyond the recorded head (seq ${head.seq}): the head was rewritten`,
      checkpointsVerified: cp,
    });
  }
  return result({ count: last, checkpointsVerified: cp });
}

function missing(from: number, to: number): string {
  return from === to ? `record ${from} is missing` : `records ${from}..${to} are missing`;
}
