// Durations as operators write them: Go-style "90s", "5m", "1h30m", plus "d" for days.
// Bad input is rejected, never clamped.
import { InvalidArgumentError } from './errors.ts';

const units: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const MAX_MS = 100 * 365 * 86_400_000;

/** Parses a duration into milliseconds. `what` names the field in the error. */
export function parseDuration(text: string, what = 'duration'): number {
  const s = text.trim();
  if (s === '' || s.length > 64)
    throw new InvalidArgumentError(`${prefix(what)}invalid duration "${text}"`);
  if (/^\d+$/.test(s)) {
    // A bare number is seconds, as in SPIRE's *_ttl fields.
    return checkRange(Number(s) * 1000, text, what);
  }
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m || !m[1] || !m[2]) {
      throw new InvalidArgumentError(
        `${prefix(what)}invalid duration "${text}" (use a number with a unit: ms, s, m, h, d; e.g. 90s, 1h30m)`,
      );
    }
    total += Number(m[1]) * (units[m[2]] ?? 0);
    pos = re.lastIndex;
  }
  return checkRange(Math.round(total), text, what);
}

function prefix(what: string): string {
  return what ? `${what}: ` : '';
}

function checkRange(ms: number, text: string, what: string): number {
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new InvalidArgumentError(`${prefix(what)}duration must be positive, got "${text}"`);
  }
  if (ms > MAX_MS) throw new InvalidArgumentError(`${prefix(what)}duration "${text}" is too long`);
  return ms;
}

/** Formats milliseconds compactly, e.g. 5400000 → "1h30m". */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s';
  const parts: string[] = [];
  let rest = Math.round(ms / 1000);
  for (const [unit, sec] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const n = Math.floor(rest / sec);
    if (n > 0) {
      parts.push(`${n}${unit}`);
      rest -= n * sec;
    }
  }
  return parts.join('') || `${ms}ms`;
}
