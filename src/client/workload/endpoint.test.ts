import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidArgumentError } from '../../core/errors.ts';
import { defaultEndpoint, parseEndpoint, resolveEndpoint } from './endpoint.ts';

test('unix URIs: with an empty authority or none', () => {
  assert.deepEqual(parseEndpoint('unix:///run/spire/agent.sock'), {
    kind: 'unix',
    path: '/run/spire/agent.sock',
    uri: 'unix:///run/spire/agent.sock',
  });
  assert.equal(parseEndpoint('unix:/tmp/a.sock').kind, 'unix');
  const p = parseEndpoint('unix:///tmp/with%20space.sock');
  assert.equal(p.kind === 'unix' && p.path, '/tmp/with space.sock');
});

test('tcp URIs: IPv4 and bracketed IPv6 with a port', () => {
  assert.deepEqual(parseEndpoint('tcp://127.0.0.1:8081'), {
    kind: 'tcp',
    host: '127.0.0.1',
    port: 8081,
    uri: 'tcp://127.0.0.1:8081',
  });
  const v6 = parseEndpoint('tcp://[::1]:443');
  assert.equal(v6.kind === 'tcp' && v6.host, '::1');
});

const invalid: Array<[string, RegExp]> = [
  ['', /empty/],
  ['/tmp/agent.sock', /scheme/],
  ['agent.sock', /scheme/],
  ['http://127.0.0.1:80', /unsupported scheme "http"/],
  ['npipe:foo', /unsupported scheme/],
  ['unix:', /absolute path/],
  ['unix:relative/path', /absolute path/],
  ['unix://', /socket path is missing/],
  ['unix:///', /socket path is missing/],
  ['unix://host/tmp/a.sock', /authority/],
  ['unix:///tmp/a.sock?x=1', /query/],
  ['unix:///tmp/a.sock#frag', /fragment/],
  ['unix:///tmp/%zz', /percent-encoding/],
  ['unix:///tmp/a%00b', /NUL/],
  ['tcp:127.0.0.1:80', /tcp:\/\/IP:port/],
  ['tcp://127.0.0.1', /IP and a port/],
  ['tcp://127.0.0.1:', /port is missing/],
  ['tcp://:8080', /host is missing/],
  ['tcp://localhost:8080', /must be an IP address/],
  ['tcp://example.org:8080', /must be an IP address/],
  ['tcp://127.0.0.1:0', /not in 1-65535/],
  ['tcp://127.0.0.1:65536', /not in 1-65535/],
  ['tcp://127.0.0.1:http', /IP and a port/],
  ['tcp://127.0.0.1:80/path', /path, query or fragment/],
  ['tcp://127.0.0.1:80?q', /path, query or fragment/],
  ['tcp://127.0.0.1:80#f', /path, query or fragment/],
  ['tcp://user@127.0.0.1:80', /userinfo/],
  ['tcp://::1:80', /IP and a port/],
  ['tcp://[::1]', /IP and a port/],
  ['tcp://[example]:80', /must be an IP address/],
];

for (const [addr, re] of invalid) {
  test(`invalid endpoint ${JSON.stringify(addr)}`, () => {
    assert.throws(
      () => parseEndpoint(addr),
      (e: unknown) => e instanceof InvalidArgumentError && re.test(e.message),
    );
  });
}

test('explicit address wins over the environment value; neither is an error', () => {
  const r = resolveEndpoint({ address: 'unix:///a.sock', env: 'tcp://127.0.0.1:1' });
  assert.equal(r.kind, 'unix');
  assert.equal(resolveEndpoint({ env: 'tcp://127.0.0.1:1' }).kind, 'tcp');
  assert.throws(() => resolveEndpoint({}), /SPIFFE_ENDPOINT_SOCKET/);
  assert.throws(() => resolveEndpoint({ address: '', env: '' }), /SPIFFE_ENDPOINT_SOCKET/);
});

test('defaultEndpoint reads SPIFFE_ENDPOINT_SOCKET from the given environment', () => {
  assert.equal(defaultEndpoint({ SPIFFE_ENDPOINT_SOCKET: 'unix:///x.sock' }).uri, 'unix:///x.sock');
  assert.throws(() => defaultEndpoint({}), /SPIFFE_ENDPOINT_SOCKET/);
});
