// Frames the commands a Redis client sends (RESP arrays of bulk strings, redis.io "Redis
// serialization protocol specification", "Sending commands to a Redis server") just far enough
// to find AUTH, HELLO and RESET: those are captured whole so the handler can replace the client's
// credentials with the injected ones (or, for RESET, end the session); every other command passes
// through as the bytes the client sent, in order, with consecutive commands of a chunk kept in one
// slice.
//
// Untrusted, from the client: every header line, argument count and bulk length is bounded, and
// the framing is stricter than Redis's own (CRLF checked after every bulk), so that the proxy and
// the server can never disagree about where a command starts — a disagreement could smuggle an
// AUTH past the scanner. Inline commands (plain text lines) are refused for the same reason:
// Redis splits them with its own quoting rules.
//
// Pure: no I/O; push() takes a chunk and returns what to do with it.

/** Redis's own limits: proto-max-bulk-len's default and the multibulk count it accepts. */
export const MAX_BULK_BYTES = 512 * 1024 * 1024;
export const MAX_ARGS = 1024 * 1024;
/** "*1048576\r\n", "$536870912\r\n": longer header lines are garbage. */
export const MAX_HEADER_LINE_BYTES = 16;
/** An AUTH or HELLO command, whole (usernames and passwords are short). */
export const MAX_CAPTURED_BYTES = 64 * 1024;

export type ScanEvent =
  /** Bytes to forward unchanged. */
  | { readonly kind: 'pass'; readonly bytes: Buffer }
  /** A whole AUTH, HELLO or RESET command (args[0] is the command name as sent). */
  | { readonly kind: 'command'; readonly args: readonly Buffer[] }
  /** The client broke the protocol: answer `-ERR Protocol error: <message>` and close. */
  | { readonly kind: 'error'; readonly message: string };

const STAR = 0x2a;
const DOLLAR = 0x24;
const CR = 0x0d;
const LF = 0x0a;
/** Longest captured command name ("hello", "reset"): a longer first argument is passed through. */
const LONGEST_CAPTURED = 5;
const CAPTURED = new Set(['auth', 'hello', 'reset']);

type Phase = 'command' | 'array-line' | 'bulk-line' | 'bulk-data' | 'bulk-crlf';
/** idle: between commands; undecided: the command name is not known yet. */
type Mode = 'idle' | 'undecided' | 'pass' | 'capture';

export class CommandScanner {
  #phase: Phase = 'command';
  #mode: Mode = 'idle';
  #failed = false;
  #line: Buffer[] = [];
  #lineBytes = 0;
  #argsLeft = 0;
  #argIndex = 0;
  #bulkLeft = 0;
  #crlfSeen = 0;
  /** Bytes of an undecided command from earlier chunks. */
  #held: Buffer[] = [];
  /** The bulk string being collected (undecided: the name; capture: every argument). */
  #bulk: Buffer[] = [];
  #args: Buffer[] = [];
  #capturedBytes = 0;

  push(chunk: Buffer): ScanEvent[] {
    const out: ScanEvent[] = [];
    if (this.#failed) return out;
    // Where unforwarded pass-through bytes start in this chunk (-1: none pending).
    let passFrom = this.#mode === 'pass' || this.#mode === 'idle' ? 0 : -1;
    // Where the current command started in this chunk (-1: in an earlier chunk).
    let cmdStart = -1;
    const flushPass = (end: number): void => {
      if (passFrom >= 0 && end > passFrom) {
        out.push({ kind: 'pass', bytes: chunk.subarray(passFrom, end) });
      }
      passFrom = -1;
    };
    const decide = (captured: boolean): void => {
      if (captured) {
        if (cmdStart >= 0) flushPass(cmdStart);
        this.#mode = 'capture';
        this.#args = [Buffer.concat(this.#bulk)];
      } else {
        for (const bytes of this.#held) out.push({ kind: 'pass', bytes });
        if (passFrom < 0) passFrom = cmdStart >= 0 ? cmdStart : 0;
        this.#mode = 'pass';
      }
      this.#held = [];
      this.#bulk = [];
    };
    const fail = (message: string): ScanEvent[] => {
      this.#failed = true;
      out.push({ kind: 'error', message });
      return out;
    };

    let pos = 0;
    while (pos < chunk.length) {
      switch (this.#phase) {
        case 'command': {
          if (chunk[pos] !== STAR) {
            return fail(
              'expected a RESP array of bulk strings (inline commands are not supported)',
            );
          }
          cmdStart = pos;
          this.#mode = 'undecided';
          this.#phase = 'array-line';
          break;
        }
        case 'array-line':
        case 'bulk-line': {
          const nl = chunk.indexOf(LF, pos);
          const end = nl < 0 ? chunk.length : nl + 1;
          this.#lineBytes += end - pos;
          if (this.#lineBytes > MAX_HEADER_LINE_BYTES) return fail('header line too long');
          this.#line.push(chunk.subarray(pos, end));
          pos = end;
          if (nl < 0) break;
          const isArray = this.#phase === 'array-line';
          const n = headerNumber(Buffer.concat(this.#line), isArray ? STAR : DOLLAR);
          this.#line = [];
          this.#lineBytes = 0;
          if (n === undefined) return fail(isArray ? 'invalid multibulk length' : "expected '$'");
          if (isArray) {
            if (n > MAX_ARGS) return fail('invalid multibulk length');
            if (n <= 0) {
              // An empty command: Redis ignores it; so does the scanner.
              if (this.#mode === 'undecided') decide(false);
              this.#endCommand();
              break;
            }
            this.#argsLeft = n;
            this.#argIndex = 0;
            this.#phase = 'bulk-line';
            break;
          }
          if (n < 0 || n > MAX_BULK_BYTES) return fail('invalid bulk length');
          if (this.#mode === 'undecided' && n > LONGEST_CAPTURED) decide(false);
          if (this.#mode === 'capture' && !this.#capture(n)) {
            return fail('AUTH, HELLO or RESET too long');
          }
          this.#bulkLeft = n;
          this.#phase = n === 0 ? 'bulk-crlf' : 'bulk-data';
          this.#crlfSeen = 0;
          break;
        }
        case 'bulk-data': {
          const n = Math.min(this.#bulkLeft, chunk.length - pos);
          if (this.#mode !== 'pass') this.#bulk.push(Buffer.from(chunk.subarray(pos, pos + n)));
          pos += n;
          this.#bulkLeft -= n;
          if (this.#bulkLeft === 0) {
            this.#phase = 'bulk-crlf';
            this.#crlfSeen = 0;
          }
          break;
        }
        case 'bulk-crlf': {
          if (chunk[pos] !== (this.#crlfSeen === 0 ? CR : LF)) {
            return fail('expected CRLF after a bulk string');
          }
          pos += 1;
          this.#crlfSeen += 1;
          if (this.#crlfSeen < 2) break;
          if (this.#mode === 'undecided') {
            decide(CAPTURED.has(Buffer.concat(this.#bulk).toString('latin1').toLowerCase()));
          } else if (this.#mode === 'capture' && this.#argIndex > 0) {
            this.#args.push(Buffer.concat(this.#bulk));
            this.#bulk = [];
          }
          this.#argIndex += 1;
          this.#argsLeft -= 1;
          if (this.#argsLeft > 0) {
            this.#phase = 'bulk-line';
            break;
          }
          if (this.#mode === 'capture') out.push({ kind: 'command', args: this.#args });
          this.#endCommand();
          if (passFrom < 0) passFrom = pos;
          break;
        }
      }
    }
    if (this.#mode === 'undecided') {
      const start = cmdStart >= 0 ? cmdStart : 0;
      flushPass(start);
      this.#held.push(Buffer.from(chunk.subarray(start)));
    } else if (this.#mode !== 'capture') {
      flushPass(chunk.length);
    }
    return out;
  }

  /** Counts a captured argument's bytes (with its framing) against MAX_CAPTURED_BYTES. */
  #capture(n: number): boolean {
    this.#capturedBytes += n + MAX_HEADER_LINE_BYTES;
    return this.#capturedBytes <= MAX_CAPTURED_BYTES;
  }

  #endCommand(): void {
    this.#phase = 'command';
    this.#mode = 'idle';
    this.#args = [];
    this.#bulk = [];
    this.#capturedBytes = 0;
  }
}

/** The integer of a header line `<marker><digits>\r\n` (an optional leading '-'), or undefined. */
function headerNumber(line: Buffer, marker: number): number | undefined {
  const end = line.length - 2;
  if (line[0] !== marker || end < 2 || line[end] !== CR || line[end + 1] !== LF) return undefined;
  let i = 1;
  const negative = line[i] === 0x2d;
  if (negative) i += 1;
  if (i >= end) return undefined;
  let n = 0;
  for (; i < end; i += 1) {
    const d = (line[i] ?? 0) - 0x30;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  return negative ? -n : n;
}
