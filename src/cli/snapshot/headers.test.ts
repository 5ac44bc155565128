import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Headers as SnapshotHeaders } from './headers.ts';

// The snapshot's Headers must behave as Node's own for everything the Connect client does.
test('snapshot Headers behave as the WHATWG Headers for what Connect uses', () => {
  for (const H of [globalThis.Headers, SnapshotHeaders]) {
    const h = new H({ 'Content-Type': 'application/proto', 'X-B': ' 1 ' });
    h.append('x-b', '2');
    h.set('Connect-Protocol-Version', '1');
    assert.equal(h.get('content-type'), 'application/proto', H.name);
    assert.equal(h.get('X-B'), '1, 2');
    assert.equal(h.has('connect-protocol-version'), true);
    assert.equal(h.get('missing'), null);
    h.delete('Content-Type');
    assert.equal(h.has('content-type'), false);
    const copy = new H(h);
    assert.deepEqual(
      [...copy],
      [
        ['connect-protocol-version', '1'],
        ['x-b', '1, 2'],
      ],
    );
    const seen: string[] = [];
    copy.forEach((v, k) => seen.push(`${k}=${v}`));
    assert.deepEqual(seen, ['connect-protocol-version=1', 'x-b=1, 2']);
    assert.deepEqual([...new H([['A', 'x']]).keys()], ['a']);
  }
});
