// --log-format of `server run` and `agent run`, in real processes (the loggers write to fd 2):
// text lines when asked (flag, env or config), JSON lines when stderr is not a terminal.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../main.ts');
const dir = mkdtempSync(path.join(tmpdir(), 'tessera-cli-log-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const TEXT_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO |WARN |ERROR|DEBUG) \S/;

/**
 * Starts `tessera ARGS` with stderr piped, waits until stderr has a line matching `until`, stops
 * it with SIGTERM (checking for a clean exit unless told not to) and returns its stderr.
 */
async function stderrOf(
  args: string[],
  until: RegExp,
  env: Record<string, string> = {},
  cleanExit = true,
): Promise<string> {
  const child = spawn(process.execPath, [MAIN, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { PATH: process.env.PATH ?? '', HOME: dir, ...env },
  });
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (until.test(err)) resolve();
    });
    void exited.then((code) => reject(new Error(`exited ${code} before ${until}:\n${err}`)));
  });
  child.kill('SIGTERM');
  const code = await exited;
  if (cleanExit) assert.equal(code, 0, err);
  return err;
}

function serverArgs(name: string): string[] {
  return [
    'server',
    'run',
    '--trust-domain',
    'example.org',
    '--data-dir',
    path.join(dir, name),
    '--listen',
    '127.0.0.1:0',
    '--health-listen',
    '',
  ];
}

const READY = /tessera server ready: api/;

describe('server run', () => {
  test('--log-format text: time, level, message, key=value fields', async () => {
    const err = await stderrOf([...serverArgs('text'), '--log-format', 'text'], READY);
    const line = err.split('\n').find((l) => l.includes(' tessera server ready '));
    assert.ok(line, err);
    assert.match(line, TEXT_LINE);
    assert.match(line, / INFO {2}tessera server ready api=127\.0\.0\.1:\d+ /);
    assert.match(line, / trustDomain=example\.org( |$)/);
    assert.doesNotMatch(err, /^\{"level"/m);
  });

  test('stderr not a terminal: JSON lines by default; TESSERA_LOG_FORMAT=text switches', async () => {
    const json = await stderrOf(serverArgs('json'), READY);
    const record = json
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg?: string; level?: number })
      .find((r) => r.msg === 'tessera server ready');
    assert.equal(record?.level, 30, json);

    const text = await stderrOf(serverArgs('env'), READY, { TESSERA_LOG_FORMAT: 'text' });
    assert.match(text, / INFO {2}tessera server ready api=/);
  });

  test('log_format in the config file; a bad value is refused with the key', async () => {
    const config = path.join(dir, 'server.yaml');
    writeFileSync(config, 'log_format: text\n');
    const err = await stderrOf([...serverArgs('config'), '--config', config], READY);
    assert.match(err, / INFO {2}tessera server ready api=/);

    writeFileSync(config, 'log_format: pretty\n');
    const bad = spawn(process.execPath, [MAIN, ...serverArgs('bad'), '--config', config], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let out = '';
    bad.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise((r) => bad.once('exit', r));
    assert.equal(code, 2);
    assert.match(out, /^error: config: log_format: /m);
  });
});

describe('agent run', () => {
  test('--log-format text', async () => {
    const err = await stderrOf(
      [
        'agent',
        'run',
        '--log-format',
        'text',
        '--trust-domain',
        'example.org',
        '--server',
        '127.0.0.1:1',
        '--join-token',
        'x',
        '--insecure-bootstrap',
        '--data-dir',
        path.join(dir, 'agent'),
        '--workload-socket',
        path.join(dir, 'agent.sock'),
      ],
      / WARN {2}INSECURE BOOTSTRAP/,
      {},
      false, // stopped while still starting: the exit status is not what this test is about
    );
    assert.match(err.split('\n').find((l) => l.includes('INSECURE BOOTSTRAP')) ?? '', TEXT_LINE);
  });

  test('--log-format accepts only text and json', async () => {
    const child = spawn(process.execPath, [MAIN, 'agent', 'run', '--log-format', 'pretty'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let out = '';
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    assert.equal(await new Promise((r) => child.once('exit', r)), 2);
    assert.match(out, /argument 'pretty' is invalid\. Allowed choices are text, json/);
  });
});
