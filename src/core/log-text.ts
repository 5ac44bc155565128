// The human log format of the server and the agent: pino's JSON lines (already redacted by pino,
// so no secret reaches this code) rewritten as
//   2026-12-07T12:34:56.789Z INFO  tessera server ready api=127.0.0.1:8081 trustDomain=example.org
// Values that are not plain words are JSON-quoted, so a caller-supplied string with a newline or
// a quote cannot forge a second log line. Pure: the composition roots wire it to stderr.

export type LogFormat = 'text' | 'json';

/**
 * pino `redact` paths of the server's and the agent's loggers: fields under these names, one
 * level down (a logged object's `token`, `key`, ...), are replaced by "[Redacted]" before any
 * line is written. A backstop: secrets are not logged on purpose in the first place.
 */
export const LOG_REDACT_PATHS: readonly string[] = Object.freeze([
  '*.token',
  '*.key',
  '*.privateKey',
  '*.joinToken',
  '*.password',
  '*.secret',
]);
export type LogFormatSetting = LogFormat | 'auto';

/** `auto` is text for a person at a terminal, JSON for log collectors and files. */
export function resolveLogFormat(setting: LogFormatSetting, stderrIsTty: boolean): LogFormat {
  return setting === 'auto' ? (stderrIsTty ? 'text' : 'json') : setting;
}

const LEVELS: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** Keys every pino line has, shown in fixed places or not at all. */
const FRAME = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

/** One pino JSON line (with or without its newline) → one text line ending in "\n". */
export function formatLogLine(line: string): string {
  let rec: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error();
    rec = parsed as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : line + '\n'; // not ours: pass it through unchanged
  }
  const time = typeof rec.time === 'number' ? new Date(rec.time).toISOString() : '-';
  const level =
    typeof rec.level === 'number' ? (LEVELS[rec.level] ?? String(rec.level)) : String(rec.level);
  const parts = [time, level.padEnd(5)];
  if (rec.msg !== undefined && rec.msg !== '') parts.push(messageText(rec.msg));
  for (const [k, v] of Object.entries(rec)) {
    if (FRAME.has(k) || v === undefined) continue;
    parts.push(`${k}=${textValue(k === 'err' ? errorText(v) : v)}`);
  }
  return parts.join(' ') + '\n';
}

/** pino's error serializer gives {type, message, stack}: the message says enough on one line. */
function errorText(v: unknown): unknown {
  if (v && typeof v === 'object' && typeof (v as { message?: unknown }).message === 'string')
    return (v as { message: string }).message;
  return v;
}

const PLAIN = /^[\w.:/@+,%~-]+$/;
/** No control characters or quotes: printed as it is, spaces included. */
const PLAIN_MESSAGE = /^[^\x00-\x1f\x7f"]+$/;

function messageText(v: unknown): string {
  return typeof v === 'string' && PLAIN_MESSAGE.test(v) ? v : textValue(v);
}

function textValue(v: unknown): string {
  if (typeof v === 'string') return PLAIN.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return JSON.stringify(v) ?? String(v);
}

/** A pino destination that writes text lines to `out` (e.g. pino.destination(2)). */
export function textLogStream(out: { write(s: string): unknown }): { write(s: string): void } {
  return {
    write: (chunk: string) => {
      // pino writes one record per call; split anyway so a batch never becomes one text line.
      for (const line of chunk.split('\n')) if (line !== '') out.write(formatLogLine(line));
    },
  };
}
