import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandScanner, MAX_CAPTURED_BYTES, type ScanEvent } from './command-scanner.ts';
import { encodeCommand } from './resp.ts';

/** The scanner's output as a list: pass-through bytes merged, captured commands as arg lists. */
function summarize(events: readonly ScanEvent[]): (string | string[])[] {
  const out: (string | string[])[] = [];
  for (const e of events) {
    if (e.kind === 'pass') {
      const last = out.at(-1);
      if (typeof last === 'string') out[out.length - 1] = last + e.bytes.toString('latin1');
      else out.push(e.bytes.toString('latin1'));
    } else if (e.kind === 'command') out.push(e.args.map((a) => a.toString('latin1')));
    else out.push(['ERROR', e.message]);
  }
  return out;
}

function scanAll(input: Buffer, chunkSize = input.length): ScanEvent[] {
  const s = new CommandScanner();
  const events: ScanEvent[] = [];
  for (let i = 0; i < input.length; i += chunkSize) {
    events.push(...s.push(input.subarray(i, i + chunkSize)));
  }
  return events;
}

const set = encodeCommand(['SET', 'k', 'v']);
const get = encodeCommand(['GET', 'k']);
const auth = encodeCommand(['auth', 'someone', 'guess']);
const hello = encodeCommand(['HELLO', '3', 'AUTH', 'u', 'p', 'SETNAME', 'app']);

test('ordinary pipelined commands pass through as one slice of the chunk', () => {
  const input = Buffer.concat([set, get, set]);
  const events = scanAll(input);
  assert.equal(events.length, 1);
  assert.deepEqual(events[0], { kind: 'pass', bytes: input });
});

test('AUTH and HELLO are captured in place; everything else passes in order', () => {
  const input = Buffer.concat([get, auth, set, hello, get]);
  const expected = [
    get.toString('latin1'),
    ['auth', 'someone', 'guess'],
    set.toString('latin1'),
    ['HELLO', '3', 'AUTH', 'u', 'p', 'SETNAME', 'app'],
    get.toString('latin1'),
  ];
  for (const size of [input.length, 1, 2, 3, 7, 13]) {
    assert.deepEqual(summarize(scanAll(input, size)), expected, `chunks of ${size}`);
  }
});

test('a command whose name only looks like AUTH passes', () => {
  const input = Buffer.concat([encodeCommand(['AUTHX', 'a']), encodeCommand(['au', 'b'])]);
  assert.deepEqual(summarize(scanAll(input, 1)), [input.toString('latin1')]);
});

test('a large value streams through without being held', () => {
  const big = encodeCommand(['SET', 'k', Buffer.alloc(1 << 20, 0x61)]);
  const s = new CommandScanner();
  let passed = 0;
  for (let i = 0; i < big.length; i += 65536) {
    const events = s.push(big.subarray(i, i + 65536));
    for (const e of events) {
      assert.equal(e.kind, 'pass');
      if (e.kind === 'pass') passed += e.bytes.length;
    }
    // Everything pushed so far is out, but for the few bytes of a command not yet named.
    assert.ok(passed >= Math.min(big.length, i + 65536) - 32);
  }
  assert.equal(passed, big.length);
});

test('empty commands pass through', () => {
  const input = Buffer.from('*0\r\n*-1\r\n');
  assert.deepEqual(summarize(scanAll(Buffer.concat([input, get]), 1)), [
    Buffer.concat([input, get]).toString('latin1'),
  ]);
});

test('garbage is an error, and nothing after it is scanned', () => {
  const cases: [string | Buffer, string][] = [
    ['PING\r\n', 'expected a RESP array of bulk strings (inline commands are not supported)'],
    ['*x\r\n', 'invalid multibulk length'],
    ['*2000000\r\n', 'invalid multibulk length'],
    ['*1\r\n+OK\r\n', "expected '$'"],
    ['*1\r\n$-1\r\n', 'invalid bulk length'],
    ['*1\r\n$999999999\r\n', 'invalid bulk length'],
    ['*1\r\n$4\r\nPINGxx', 'expected CRLF after a bulk string'],
    ['*11111111111111111111111', 'header line too long'],
    [
      encodeCommand(['AUTH', 'u', Buffer.alloc(MAX_CAPTURED_BYTES, 0x61)]),
      'AUTH, HELLO or RESET too long',
    ],
  ];
  for (const [input, message] of cases) {
    const s = new CommandScanner();
    const bytes = Buffer.concat([get, Buffer.from(input)]);
    const events = s.push(bytes);
    assert.deepEqual(events.at(-1), { kind: 'error', message }, String(input).slice(0, 40));
    assert.ok(
      events.every((e) => e.kind !== 'command'),
      'nothing captured',
    );
    assert.deepEqual(s.push(get), [], 'ignores input after an error');
  }
});
