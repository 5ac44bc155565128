// Server addresses: names expanded to all their addresses; failover moves on from the current one.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ServerEndpoints, expandAddresses } from './server-endpoints.ts';

const lookup = async (host: string): Promise<string[]> => {
  if (host === 'servers.example') return ['10.0.0.1', '10.0.0.2', 'fd00::3'];
  throw new Error(`ENOTFOUND ${host}`);
};

describe('server endpoints', () => {
  it('expands a name with several addresses into one endpoint each; literals stay', async () => {
    assert.deepEqual(
      await expandAddresses(['servers.example:8081', '127.0.0.1:9', '[::1]:9'], lookup),
      ['10.0.0.1:8081', '10.0.0.2:8081', '[fd00::3]:8081', '127.0.0.1:9', '[::1]:9'],
    );
    assert.deepEqual(await expandAddresses(['nowhere.example:1'], lookup), ['nowhere.example:1']);
  });

  it('moves to the next address only when the current one failed, and wraps around', async () => {
    const e = new ServerEndpoints(['servers.example:8081'], lookup);
    await e.resolve();
    assert.equal(e.current, '10.0.0.1:8081');
    assert.equal(e.advance('10.0.0.1:8081'), '10.0.0.2:8081');
    // A late failure report about the address already left changes nothing.
    assert.equal(e.advance('10.0.0.1:8081'), null);
    assert.equal(e.current, '10.0.0.2:8081');
    assert.equal(e.advance('10.0.0.2:8081'), '[fd00::3]:8081');
    assert.equal(e.advance('[fd00::3]:8081'), '10.0.0.1:8081');
    assert.equal(new ServerEndpoints(['a:1']).advance('a:1'), null);
  });
});
