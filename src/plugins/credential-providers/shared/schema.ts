// Config pieces shared by the credential-provider schemas. Configs are stored as validated and
// validated again when a provider is built, so no field is transformed: durations stay strings
// ("15m") and are compiled by the factory with ttlMs.
import { z } from 'zod';
import { NAME_PATTERN } from '../../../core/access.ts';
import { parseDuration } from '../../../core/duration.ts';

/** The name of a secret in the secret store. */
export const secretName = z
  .string()
  .regex(NAME_PATTERN, 'must be a secret name (lowercase letters, digits, ".", "_", "-")');

/** A duration string between minMs and maxMs, e.g. "15m". */
export function ttlString(fallback: string, minMs: number, maxMs: number) {
  return z
    .string()
    .max(32)
    .default(fallback)
    .superRefine((v, ctx) => {
      let ms: number;
      try {
        ms = parseDuration(v, '');
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return;
      }
      if (ms < minMs || ms > maxMs) {
        ctx.addIssue({
          code: 'custom',
          message: `must be between ${minMs / 1000}s and ${maxMs / 1000}s, got "${v}"`,
        });
      }
    });
}

/** Milliseconds of a duration string the schema has accepted. */
export const ttlMs = (v: string): number => parseDuration(v, '');

/** Whole seconds of a duration string the schema has accepted. */
export const ttlSeconds = (v: string): number => Math.max(1, Math.round(ttlMs(v) / 1000));
