// The agent's server workload index and its sync: by name, by host:port (case-insensitive host,
// trailing dot ignored, IPv6 literals compared as addresses), refetched when the access revision moves, kept on a failed fetch.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ServerWorkload } from '../../core/access.ts';
import { ServerWorkloadIndex, ServerWorkloadSync } from './server-workloads.ts';

const w = (name: string, host: string, port: number): ServerWorkload => ({
  name,
  host,
  port,
  protocol: 'tcp',
  pathPrefix: '',
  present: '',
  tls: false,
  tlsCa: '',
  tlsDecrypt: false,
  createdAt: 0,
  updatedAt: 0,
});

describe('ServerWorkloadIndex', () => {
  it('finds by name and by host:port, host case-insensitive, trailing dot ignored, IPv6 canonical', () => {
    const i = new ServerWorkloadIndex([w('b', 'API.internal', 443), w('a', '::1', 5432)]);
    assert.equal(i.byName('b')?.host, 'API.internal');
    assert.equal(i.find('api.INTERNAL.', 443)?.name, 'b');
    assert.equal(i.find('[::1]', 5432)?.name, 'a');
    assert.equal(i.find('0:0::0:1', 5432)?.name, 'a');
    const v6 = new ServerWorkloadIndex([w('c', 'FD77:0:0:0:0:0:0:05', 7000)]);
    assert.equal(v6.find('fd77::5', 7000)?.name, 'c');
    assert.equal(i.find('api.internal', 80), undefined);
    assert.equal(i.byName('c'), undefined);
  });
});

describe('ServerWorkloadSync', () => {
  it('fetches at start and on a new access revision; keeps the last list when a fetch fails', async () => {
    let lists: ServerWorkload[][] = [[w('a', 'h', 1)], [w('a', 'h', 1), w('b', 'h', 2)]];
    let fail = false;
    let calls = 0;
    const s = new ServerWorkloadSync({
      fetch: async () => {
        calls++;
        if (fail) throw new Error('server away');
        const next = lists.shift() ?? [];
        return { serverWorkloads: next, revision: 1n };
      },
      retryMs: 5,
      log: () => {},
    });
    const changed: number[] = [];
    s.onChange(() => changed.push(s.index.all.length));
    const ac = new AbortController();
    const run = s.run(ac.signal);
    for (let i = 0; i < 200 && changed.length < 1; i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(changed, [1]);
    s.noteAccessRevision(7n, false);
    for (let i = 0; i < 200 && changed.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(changed, [1, 2]);
    s.noteAccessRevision(7n, false); // unchanged: no fetch
    fail = true;
    s.noteAccessRevision(8n, false);
    for (let i = 0; i < 200 && calls < 5; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(s.index.byName('b')?.port, 2, 'the last known list stays');
    lists = [];
    ac.abort();
    await run;
  });
});
