import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { CheckpointError, keyIdOf, parseCheckpoints, signCheckpoint } from './audit-checkpoint.ts';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const body = (seq: number) => ({
  trustDomain: 'example.org',
  serverId: 's1',
  seq,
  hash: String(seq % 10).repeat(64),
  time: 1_700_000_000_000 + seq,
});
const line = (seq: number) => JSON.stringify(signCheckpoint(body(seq), privateKey, publicKey));

describe('audit checkpoints', () => {
  it('sign and parse round-trip, in file order; a torn last line is ignored', () => {
    const text = `${line(1)}\n\n${line(5)}\n{"v":1,"tr`;
    const cs = parseCheckpoints(text, publicKey);
    assert.deepEqual(
      cs.map((c) => [c.seq, c.keyId]),
      [
        [1, keyIdOf(publicKey)],
        [5, keyIdOf(publicKey)],
      ],
    );
  });

  it('refuses an edited line, another key, and garbage, naming the line', () => {
    const edited = line(3).replace('"seq":3', '"seq":4');
    assert.throws(() => parseCheckpoints(`${line(1)}\n${edited}\n`, publicKey), {
      name: 'CheckpointError',
      message: 'line 2: bad signature',
    });
    const other = generateKeyPairSync('ed25519');
    assert.throws(
      () => parseCheckpoints(`${line(1)}\n`, other.publicKey),
      (e) =>
        e instanceof CheckpointError && /^line 1: signed by key [0-9a-f]{16}, not /.test(e.message),
    );
    assert.throws(() => parseCheckpoints('nope\n', publicKey), { message: 'line 1: not JSON' });
    assert.throws(() => parseCheckpoints('{"v":2}\n', publicKey), {
      message: 'line 1: not a version 1 audit checkpoint',
    });
  });
});
