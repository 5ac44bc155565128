// The credentials lines of /proc/<pid>/status:
//   Uid:    <real> <effective> <saved> <filesystem>
//   Gid:    <real> <effective> <saved> <filesystem>
//   Groups: <supplementary gid> ...          (may be empty)
// The effective ids are the ones the kernel checks access with and the ones SO_PEERCRED reports
// for the connecting socket, so they are what the selectors name (SPIRE picks the same column).
import { FailedPreconditionError } from '../../../core/errors.ts';

export interface ProcCredentials {
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly number[];
}

export function parseProcStatus(text: string, what: string): ProcCredentials {
  let uid: number | undefined;
  let gid: number | undefined;
  let groups: number[] = [];
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon);
    if (key !== 'Uid' && key !== 'Gid' && key !== 'Groups') continue;
    const fields = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .filter((f) => f !== '');
    const ids = fields.map(parseId);
    if (ids.some((n) => n === undefined)) {
      throw new FailedPreconditionError(`${what}: malformed ${key} line in /proc status`);
    }
    const nums = ids as number[];
    if (key === 'Groups') groups = nums;
    else {
      // Real, effective, saved, filesystem: the effective id is the second.
      const effective = nums[1];
      if (effective === undefined) {
        throw new FailedPreconditionError(`${what}: malformed ${key} line in /proc status`);
      }
      if (key === 'Uid') uid = effective;
      else gid = effective;
    }
  }
  if (uid === undefined || gid === undefined) {
    throw new FailedPreconditionError(`${what}: /proc status has no Uid or Gid line`);
  }
  return { uid, gid, groups: [...new Set(groups)] };
}

function parseId(s: string): number | undefined {
  if (!/^\d{1,10}$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 0xffffffff ? n : undefined;
}
