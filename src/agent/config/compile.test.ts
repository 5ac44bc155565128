// Agent config: the Workload API connection limits are defaulted, and refused (with the key)
// when the per-uid limit is not below the global one.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileAgentConfig } from './compile.ts';

const base = { trust_domain: 'example.org', server_address: '127.0.0.1:8081' };
const defaults = { dataDir: '/tmp/d', socketPath: '/tmp/s.sock' };

describe('agent config: Workload API connection limits', () => {
  it('defaults: 1024 connections, 128 per uid, 5 s for the HTTP/2 preface', () => {
    const c = compileAgentConfig(base, {}, {}, defaults);
    assert.equal(c.workload_api_max_connections, 1024);
    assert.equal(c.workload_api_max_connections_per_uid, 128);
    assert.equal(c.workload_api_preface_timeout, 5000);
    const set = compileAgentConfig(
      {
        ...base,
        workload_api_max_connections: 64,
        workload_api_max_connections_per_uid: 8,
        workload_api_preface_timeout: '2s',
      },
      {},
      {},
      defaults,
    );
    assert.equal(set.workload_api_max_connections_per_uid, 8);
    assert.equal(set.workload_api_preface_timeout, 2000);
  });

  it('refuses a per-uid limit not below the global one, and bad values, naming the key', () => {
    assert.throws(
      () =>
        compileAgentConfig(
          { ...base, workload_api_max_connections: 10, workload_api_max_connections_per_uid: 10 },
          {},
          {},
          defaults,
        ),
      /config: workload_api_max_connections_per_uid: must be below workload_api_max_connections/,
    );
    assert.throws(
      () =>
        compileAgentConfig({ ...base, workload_api_max_connections_per_uid: 0 }, {}, {}, defaults),
      /config: workload_api_max_connections_per_uid:/,
    );
    assert.throws(
      () => compileAgentConfig({ ...base, workload_api_preface_timeout: 'soon' }, {}, {}, defaults),
      /config: workload_api_preface_timeout:/,
    );
  });
});

describe('agent config: server addresses', () => {
  it('takes one HOST:PORT, a comma-separated list (--server A,B) or a YAML list', () => {
    assert.deepEqual(compileAgentConfig(base, {}, {}, defaults).server_address, ['127.0.0.1:8081']);
    assert.deepEqual(
      compileAgentConfig(base, {}, { server_address: 'a.example:8081, 10.0.0.2:8081' }, defaults)
        .server_address,
      ['a.example:8081', '10.0.0.2:8081'],
    );
    assert.deepEqual(
      compileAgentConfig(
        { ...base, server_address: ['[::1]:8081', 'b.example:9'] },
        {},
        {},
        defaults,
      ).server_address,
      ['[::1]:8081', 'b.example:9'],
    );
  });

  it('refuses an address without a port, naming the key', () => {
    assert.throws(
      () => compileAgentConfig(base, {}, { server_address: 'a:1,b' }, defaults),
      /config: server_address\.1: expected HOST:PORT/,
    );
    assert.throws(
      () => compileAgentConfig({ ...base, server_address: [] }, {}, {}, defaults),
      /config: server_address: expected HOST:PORT/,
    );
  });
});

describe('agent config: the credential API', () => {
  it('defaults: no HTTP door, 10,000 cached credentials, 30 s per release', () => {
    const c = compileAgentConfig(base, {}, {}, defaults);
    assert.deepEqual(c.credentials, {
      http_listen: '',
      cache_max_size: 10_000,
      release_timeout: 30_000,
    });
    const set = compileAgentConfig(
      { ...base, credentials: { http_listen: '[::1]:8181', release_timeout: '5s' } },
      {},
      {},
      defaults,
    );
    assert.equal(set.credentials.http_listen, '[::1]:8181');
    assert.equal(set.credentials.release_timeout, 5000);
  });

  it('refuses a non-loopback or named HTTP listen address, naming the key', () => {
    for (const [v, why] of [
      ['0.0.0.0:8181', '0.0.0.0 is not a loopback address'],
      ['10.1.2.3:8181', '10.1.2.3 is not a loopback address'],
      ['localhost:8181', 'expected 127.0.0.1:PORT or [::1]:PORT'],
      ['127.0.0.1:99999', 'port must be 0..65535'],
    ] as const) {
      assert.throws(
        () => compileAgentConfig({ ...base, credentials: { http_listen: v } }, {}, {}, defaults),
        {
          message: new RegExp(
            `^config: credentials\\.http_listen: ${why.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`,
          ),
        },
        v,
      );
    }
    assert.throws(
      () => compileAgentConfig({ ...base, credentials: { cache: 1 } }, {}, {}, defaults),
      /config: credentials: unknown key "cache"/,
    );
  });
});
