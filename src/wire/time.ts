// Times and durations on the wire: instants are Unix seconds (int64 → bigint), TTLs whole
// seconds (int32). The domain counts milliseconds.
import { InvalidArgumentError } from '../core/errors.ts';

/** Unix milliseconds → wire seconds, rounded down. */
export const secondsFromMs = (ms: number): bigint => BigInt(Math.floor(ms / 1000));

/** Wire seconds → Unix milliseconds. */
export const msFromSeconds = (s: bigint): number => Number(s) * 1000;

/** TTL seconds from the wire → ms; negative or absurd values are refused, never clamped. */
export function ttlMsFromWire(seconds: number, what = 'ttl'): number {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > 10 * 365 * 86400) {
    throw new InvalidArgumentError(`${what}: must be a whole number of seconds, 0 for the default`);
  }
  return seconds * 1000;
}
