// The `federation` block of the server config: defaults, relationships checked with key paths.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigYaml } from '../../../plugins/config-file.ts';
import { compileServerConfig } from './compile.ts';

const compile = (file: Record<string, unknown>) =>
  compileServerConfig({ trust_domain: 'example.org', ...file }, {}, {}, { dataDir: '/d' });

function rejects(federation: unknown, message: RegExp): void {
  assert.throws(() => compile({ federation }), { name: 'InvalidArgumentError', message });
}

const rel = (over: Record<string, unknown> = {}) => ({
  trust_domain: 'remote.test',
  bundle_endpoint_url: 'https://remote.test/bundle',
  profile: 'https_web',
  ...over,
});

describe('federation config', () => {
  it('is optional; a present block gets every default', () => {
    assert.equal(compile({}).federation, undefined);
    assert.deepEqual(compile({ federation: {} }).federation, {
      ca_file: '',
      fetch_timeout: 10_000,
      relationships: [],
    });
  });

  it('reads relationships from YAML', () => {
    const file = parseConfigYaml(
      [
        'federation:',
        '  ca_file: /etc/tessera/test-ca.pem',
        '  fetch_timeout: 5s',
        '  relationships:',
        '    - trust_domain: remote.test',
        '      bundle_endpoint_url: https://remote.test:8443/bundle',
        '      profile: https_spiffe',
        '      endpoint_spiffe_id: spiffe://remote.test/spire/server',
        '      trust_bundle_file: /etc/tessera/remote.pem',
      ].join('\n'),
      'server.yaml',
    );
    const f = compile(file).federation;
    assert.equal(f?.fetch_timeout, 5000);
    assert.deepEqual(f?.relationships, [
      {
        trust_domain: 'remote.test',
        bundle_endpoint_url: 'https://remote.test:8443/bundle',
        profile: 'https_spiffe',
        endpoint_spiffe_id: 'spiffe://remote.test/spire/server',
        trust_bundle_file: '/etc/tessera/remote.pem',
      },
    ]);
  });

  it('refuses bad relationships with the key path', () => {
    rejects(
      { relationships: [rel({ profile: 'http' })] },
      /^config: federation\.relationships\.0\.profile: /,
    );
    rejects(
      { relationships: [rel({ bundle_endpoint_url: 'http://remote.test/b' })] },
      /^config: federation\.relationships\[0\]\.bundle_endpoint_url: must be an https:\/\/ URL/,
    );
    rejects(
      { relationships: [rel({ profile: 'https_spiffe' })] },
      /^config: federation\.relationships\[0\]\.endpoint_spiffe_id: required for the https_spiffe profile$/,
    );
    rejects(
      { relationships: [rel({ trust_domain: 'example.org' })] },
      /^config: federation\.relationships\[0\]\.trust_domain: "example\.org" is this server's own/,
    );
    rejects(
      { relationships: [rel(), rel({ bundle_endpoint_url: 'https://x/b' })] },
      /^config: federation\.relationships\[1\]\.trust_domain: "remote\.test" is listed twice$/,
    );
    rejects({ relationships: [rel({ extra: 1 })] }, /unknown key "extra"/);
    rejects(
      { fetch_timeout: '1h' },
      /^config: federation\.fetch_timeout: must be between 1s and 5m$/,
    );
  });
});
