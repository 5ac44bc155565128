// Times and windows as `access-policy test --at` and `what-if --since` take them.
import { parseDuration } from '../../core/duration.ts';
import { InvalidArgumentError } from '../../core/errors.ts';

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * `now`, an RFC 3339 time (`2026-12-07T22:00:00Z`, `…+01:00`) or a time relative to now
 * (`-2h`, `+1d`, `-1h30m`). Returns epoch milliseconds.
 */
export function parseAtTime(text: string, now: number, flag = '--at'): number {
  const s = text.trim();
  if (s === 'now') return now;
  if (s.startsWith('-') || s.startsWith('+')) {
    const ms = parseDuration(s.slice(1), flag);
    return s.startsWith('-') ? now - ms : now + ms;
  }
  if (RFC3339.test(s)) {
    const t = Date.parse(s.replace(' ', 'T'));
    if (Number.isFinite(t) && t >= 0) return t;
  }
  throw new InvalidArgumentError(
    `${flag}: "${s.slice(0, 64)}" is not a time (use RFC 3339 like 2026-12-07T22:00:00Z, or relative like -2h)`,
  );
}
