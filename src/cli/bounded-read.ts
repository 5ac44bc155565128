// Reading a file the user names, bounded: at most `max` bytes are ever read, so a huge (or
// endless) file or standard input cannot exhaust memory. Callers word the errors for their flag.
import { open } from 'node:fs/promises';
import { InvalidArgumentError, TesseraError } from '../core/errors.ts';

/** The input holds more than the allowed bytes; nothing was truncated. */
export class TooLargeError extends Error {}

/**
 * The bytes of `file` ("-" = standard input), at most `max`; TooLargeError beyond. Errors opening
 * the file are thrown as they are (with their errno `code`).
 */
export async function readBounded(file: string, max: number): Promise<Buffer> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of process.stdin) {
      size += (chunk as Buffer).length;
      if (size > max) throw new TooLargeError();
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(max + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > max) throw new TooLargeError();
    }
    return buf.subarray(0, n);
  } finally {
    await fh.close();
  }
}

/**
 * The text of `file` ("-" = standard input) for `flag`, at most `max` bytes and not blank;
 * errors name the flag (a missing file is not_found, anything else invalid_argument).
 */
export async function readInputText(file: string, flag: string, max: number): Promise<string> {
  const limit =
    max % 1048576 === 0
      ? `${max / 1048576} MiB`
      : max % 1024 === 0
        ? `${max / 1024} KiB`
        : `${max} bytes`;
  let bytes: Buffer;
  try {
    bytes = await readBounded(file, max);
  } catch (e) {
    if (e instanceof TooLargeError)
      throw new InvalidArgumentError(
        file === '-'
          ? `${flag}: standard input is larger than ${limit}`
          : `${flag}: ${file} is larger than ${limit}`,
      );
    const code = (e as NodeJS.ErrnoException).code;
    throw new TesseraError(
      code === 'ENOENT' ? 'not_found' : 'invalid_argument',
      `${flag}: cannot read ${file}: ${code ?? 'error'}`,
    );
  }
  const text = bytes.toString('utf8');
  if (text.trim() === '') throw new InvalidArgumentError(`${flag}: ${file} is empty`);
  return text;
}

/** The text of a file for `what` (a flag), at most `max` bytes; every failure is invalid_argument. */
export async function readTextFile(file: string, max: number, what: string): Promise<string> {
  try {
    return (await readBounded(file, max)).toString('utf8');
  } catch (e) {
    if (e instanceof TooLargeError)
      throw new InvalidArgumentError(`${what}: "${file}" is larger than ${max} bytes`);
    throw new InvalidArgumentError(`${what}: cannot read "${file}": ${(e as Error).message}`);
  }
}
