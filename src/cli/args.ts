// Parsing of flag values into wire values. Bad input is rejected with the flag's name (exit 2),
// never clamped or silently rounded.
import { parseDuration } from '../core/duration.ts';
import { InvalidArgumentError } from '../core/errors.ts';
import { parseSelector, type Selector } from '../core/selector.ts';

const INT32_MAX = 2 ** 31 - 1;

/** A duration flag (e.g. "1h", "90s", or bare seconds) → whole seconds for the wire's int32 TTLs. */
export function ttlSeconds(text: string, flag: string): number {
  const ms = parseDuration(text, flag);
  if (ms % 1000 !== 0)
    throw new InvalidArgumentError(`${flag}: must be a whole number of seconds, got "${text}"`);
  const s = ms / 1000;
  if (s > INT32_MAX) throw new InvalidArgumentError(`${flag}: duration "${text}" is too long`);
  return s;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** RFC 3339 timestamp or Unix seconds → Unix seconds (wire int64). */
export function unixSeconds(text: string, flag: string): bigint {
  const s = text.trim();
  if (/^\d{1,12}$/.test(s)) return BigInt(s);
  const ms = RFC3339.test(s) ? Date.parse(s.replace(' ', 'T')) : NaN;
  if (!Number.isFinite(ms) || ms < 0) {
    throw new InvalidArgumentError(
      `${flag}: invalid time "${text}" (use RFC 3339, e.g. 2030-01-02T15:04:05Z, or Unix seconds)`,
    );
  }
  return BigInt(Math.floor(ms / 1000));
}

/** TYPE:VALUE flags, validated locally so a typo fails before anything is sent. */
export function selectors(texts: readonly string[], flag = '--selector'): Selector[] {
  return texts.map((t) => {
    try {
      return parseSelector(t);
    } catch (e) {
      throw new InvalidArgumentError(`${flag}: ${(e as Error).message}`);
    }
  });
}

/** A positive integer flag such as --limit or --page-size. */
export function positiveInt(text: string, flag: string, max = INT32_MAX): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1 || Number(text) > max) {
    throw new InvalidArgumentError(`${flag}: must be an integer from 1 to ${max}, got "${text}"`);
  }
  return Number(text);
}

/** A non-negative integer flag as int64 (e.g. --after SEQ). */
export function nonNegativeBigInt(text: string, flag: string): bigint {
  if (!/^\d{1,18}$/.test(text.trim())) {
    throw new InvalidArgumentError(`${flag}: must be a non-negative integer, got "${text}"`);
  }
  return BigInt(text.trim());
}
