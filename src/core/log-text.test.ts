import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { formatLogLine, LOG_REDACT_PATHS, resolveLogFormat, textLogStream } from './log-text.ts';

const T = Date.UTC(2026, 11, 7, 12, 34, 56, 789);
const line = (rec: Record<string, unknown>) =>
  JSON.stringify({ level: 30, time: T, pid: 7, hostname: 'h', ...rec }) + '\n';

test('time, level, message, then key=value fields; pid and hostname left out', () => {
  assert.equal(
    formatLogLine(line({ msg: 'tessera server ready', api: '127.0.0.1:8081', entries: 3 })),
    '2026-12-07T12:34:56.789Z INFO  tessera server ready api=127.0.0.1:8081 entries=3\n',
  );
  assert.equal(
    formatLogLine(line({ level: 50, msg: 'boom', ok: false, none: null })),
    '2026-12-07T12:34:56.789Z ERROR boom ok=false none=null\n',
  );
});

test('values that are not plain words are JSON-quoted: no forged lines', () => {
  const out = formatLogLine(
    line({ msg: 'attested\nFAKE INFO admin', spiffeId: 'spiffe://td/x y', sel: ['unix:uid:1'] }),
  );
  assert.equal(
    out,
    '2026-12-07T12:34:56.789Z INFO  "attested\\nFAKE INFO admin" spiffeId="spiffe://td/x y" sel=["unix:uid:1"]\n',
  );
  assert.equal(out.split('\n').length, 2);
});

test('errors show their message; redacted values stay redacted', () => {
  const out = formatLogLine(
    line({
      level: 40,
      msg: 'refresh failed',
      err: { type: 'Error', message: 'no route', stack: 'Error: no route\n    at x' },
      req: { token: '[Redacted]' },
    }),
  );
  assert.equal(
    out,
    '2026-12-07T12:34:56.789Z WARN  refresh failed err="no route" req={"token":"[Redacted]"}\n',
  );
});

test('a line that is not a JSON object passes through', () => {
  assert.equal(formatLogLine('plain words'), 'plain words\n');
  assert.equal(formatLogLine('[1,2]\n'), '[1,2]\n');
});

test('textLogStream writes one text line per record', () => {
  let out = '';
  textLogStream({ write: (s) => (out += s) }).write(line({ msg: 'a' }) + line({ msg: 'b' }));
  assert.equal(out, '2026-12-07T12:34:56.789Z INFO  a\n2026-12-07T12:34:56.789Z INFO  b\n');
});

test('auto: text on a terminal, JSON otherwise; explicit settings win', () => {
  assert.equal(resolveLogFormat('auto', true), 'text');
  assert.equal(resolveLogFormat('auto', false), 'json');
  assert.equal(resolveLogFormat('json', true), 'json');
  assert.equal(resolveLogFormat('text', false), 'text');
});

test('the redact paths of the server and agent loggers hide secret-named fields', () => {
  const lines: string[] = [];
  const log = pino({ redact: [...LOG_REDACT_PATHS] }, { write: (l: string) => void lines.push(l) });
  const secrets = {
    token: 'tok-1',
    key: 'key-1',
    privateKey: 'pk-1',
    joinToken: 'jt-1',
    password: 'pw-1',
    secret: 's-1',
  };
  log.info({ req: secrets, spiffeId: 'spiffe://td/a' }, 'm');
  assert.equal(lines.length, 1);
  for (const v of Object.values(secrets)) assert.ok(!lines[0]!.includes(v), lines[0]);
  assert.ok(lines[0]!.includes('spiffe://td/a'));
  assert.ok(lines[0]!.includes('[Redacted]'));
});
