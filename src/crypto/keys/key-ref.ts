// Key refs become file names in the disk manager, so they are held to a strict pattern that can
// never contain a path separator, start with a dot (hidden/temp files) or be "." / "..".
import { InvalidArgumentError } from '../../core/errors.ts';

const REF_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function assertKeyRef(ref: unknown): string {
  if (typeof ref !== 'string' || !REF_RE.test(ref)) {
    throw new InvalidArgumentError(
      `invalid key ref "${String(ref).slice(0, 140)}": use 1-128 characters [A-Za-z0-9_.-], starting with a letter or digit`,
    );
  }
  return ref;
}

/** Whether `ref` is a valid key ref (the disk manager's file names are `<ref>.pem`). */
export function isKeyRef(ref: string): boolean {
  return REF_RE.test(ref);
}
