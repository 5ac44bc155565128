import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_CONFIG_BYTES, parseConfigYaml } from '../../../plugins/config-file.ts';
import { compileServerConfig, serverEnv } from './compile.ts';

const defaults = { dataDir: '/var/lib/tessera' };
const TD = { trust_domain: 'example.org' };

function compile(
  file: Record<string, unknown>,
  env: Record<string, string | undefined> = {},
  flags: Record<string, unknown> = {},
) {
  return compileServerConfig(file, env, flags, defaults);
}

function rejects(file: Record<string, unknown>, message: string | RegExp): void {
  assert.throws(() => compile(file), { name: 'InvalidArgumentError', message });
}

describe('compileServerConfig', () => {
  it('fills every default, in milliseconds, with a SQLite datastore under data_dir', () => {
    assert.deepEqual(compile(TD), {
      trust_domain: 'example.org',
      data_dir: '/var/lib/tessera',
      listen: '127.0.0.1:8081',
      health_listen: '127.0.0.1:8082',
      public_listen: '',
      public_cert_file: '',
      public_key_file: '',
      admin_socket: '/var/lib/tessera/admin.sock',
      datastore_url: '',
      datastore_pool_size: 10,
      key_manager: 'disk',
      ca: { key_type: 'ec-p256', ttl: 86_400_000, upstream_cert_file: '', upstream_key_file: '' },
      jwt: { key_type: 'ec-p256', ttl: 86_400_000, issuer: '' },
      default_x509_svid_ttl: 3_600_000,
      default_jwt_svid_ttl: 300_000,
      agent_svid_ttl: 3_600_000,
      join_token_ttl: 600_000,
      federated_bundle_refresh_interval: 10_000,
      authority_publish_delay: 0,
      node_attestors: { join_token: {} },
      rate_limit: {
        attestation_per_second: 1,
        attestation_burst: 10,
        signing_per_second: 500,
        signing_burst: 1000,
      },
      log_format: 'auto',
      log_level: 'info',
      max_request_bytes: 4 * 1024 * 1024,
      audit: {
        checkpoints: {
          enabled: true,
          interval: 60_000,
          key_file: '',
          sink: { type: 'file', path: '' },
        },
        sinks: [],
      },
      secrets: { key_manager: { disk: {} } },
      datastore: { kind: 'sqlite', path: '/var/lib/tessera/datastore.sqlite3' },
    });
  });

  it('secrets: the disk KEK manager by default; its dir; unknown keys refused', () => {
    assert.deepEqual(
      compile({ ...TD, secrets: { key_manager: { disk: { dir: '/k' } } } }).secrets,
      {
        key_manager: { disk: { dir: '/k' } },
      },
    );
    assert.throws(() => compile({ ...TD, secrets: { key_manager: { kms: {} } } }), {
      name: 'InvalidArgumentError',
      message: 'config: secrets.key_manager: unknown key "kms"',
    });
    assert.throws(() => compile({ ...TD, secrets: { key_manager: { disk: { dir: '' } } } }), {
      message: /^config: secrets\.key_manager\.disk\.dir: /,
    });
    assert.throws(() => compile({ ...TD, secrets: { kek: 1 } }), {
      message: 'config: secrets: unknown key "kek"',
    });
  });

  it('audit: sinks get their defaults; unknown keys, bad values and duplicate names are refused', () => {
    const c = compile({
      ...TD,
      audit: {
        checkpoints: { interval: '5s', sink: { type: 'http', url: 'https://c.example/x' } },
        sinks: [
          { name: 'f', type: 'file', path: '/var/log/a.jsonl', fsync: 'interval' },
          { name: 's', type: 'syslog', address: 'siem:6514', tls: { ca_file: '/ca.pem' } },
          { name: 'w', type: 'webhook', url: 'https://siem/x', secret_file: '/s' },
        ],
      },
    });
    assert.deepEqual(c.audit.checkpoints.sink, {
      type: 'http',
      url: 'https://c.example/x',
      timeout: 5000,
      attempts: 3,
    });
    assert.equal(c.audit.checkpoints.interval, 5000);
    assert.deepEqual(c.audit.sinks[0], {
      name: 'f',
      type: 'file',
      path: '/var/log/a.jsonl',
      start: 'beginning',
      batch_size: 100,
      poll_interval: 1000,
      max_backoff: 60_000,
      max_bytes: 100 * 1024 * 1024,
      keep: 5,
      fsync: 'interval',
      fsync_interval: 1000,
    });
    assert.deepEqual(c.audit.sinks[1]?.type === 'syslog' && c.audit.sinks[1].tls, {
      ca_file: '/ca.pem',
      server_name: '',
    });
    rejects(
      { ...TD, audit: { sinks: [{ name: 'f', type: 'file', path: '/a', rotate: 1 }] } },
      'config: audit.sinks.0: unknown key "rotate"',
    );
    rejects(
      { ...TD, audit: { sinks: [{ name: 'f', type: 'file', path: '/a', fsync: 'sometimes' }] } },
      /^config: audit\.sinks\.0\.fsync: /,
    );
    rejects(
      {
        ...TD,
        audit: {
          sinks: [
            { name: 'x', type: 'file', path: '/a' },
            { name: 'x', type: 'file', path: '/b' },
          ],
        },
      },
      'config: audit.sinks[1].name: "x" is used twice (it names the sink\'s cursor)',
    );
    rejects({ ...TD, audit: { retention: '1y' } }, 'config: audit: unknown key "retention"');
  });

  it('defaults the issuer to the public listener URL; the issuer flag sets jwt.issuer', () => {
    assert.equal(
      compile({ ...TD, public_listen: 'oidc.example.org:8443' }).jwt.issuer,
      'http://oidc.example.org:8443',
    );
    const tls = {
      ...TD,
      public_listen: '127.0.0.1:8443',
      public_cert_file: '/c.pem',
      public_key_file: '/k.pem',
    };
    assert.equal(compile(tls).jwt.issuer, 'https://127.0.0.1:8443');
    const flagged = compile(
      { ...tls, jwt: { ttl: '2h' } },
      {},
      { 'jwt.issuer': 'https://oidc.example.org/tenant1' },
    );
    assert.equal(flagged.jwt.issuer, 'https://oidc.example.org/tenant1');
    assert.equal(flagged.jwt.ttl, 7_200_000);
    assert.equal(compile(TD).jwt.issuer, '');
    rejects(
      { ...TD, public_listen: '127.0.0.1:8443', public_cert_file: '/c.pem' },
      'config: public_cert_file: public_cert_file and public_key_file go together (both or neither)',
    );
    rejects(
      { ...TD, public_listen: '127.0.0.1:0' },
      'config: jwt.issuer: required when public_listen uses port 0 (the default issuer is the listener URL)',
    );
    rejects(
      { ...TD, public_listen: '127.0.0.1:8443', jwt: { issuer: 'https://h/x?q=1' } },
      'config: jwt.issuer: the OIDC issuer must not have a query, fragment or user info',
    );
  });

  it('normalizes a trust-domain ID to its name and parses durations', () => {
    const c = compile({
      trust_domain: 'spiffe://example.org',
      ca: { ttl: '48h', key_type: 'ec-p384' },
      jwt: { ttl: 7200, issuer: 'https://oidc.example.org' },
      default_jwt_svid_ttl: '90s',
      bundle_refresh_hint: '5m',
    });
    assert.equal(c.trust_domain, 'example.org');
    assert.equal(c.ca.ttl, 48 * 3_600_000);
    assert.equal(c.ca.key_type, 'ec-p384');
    assert.equal(c.jwt.ttl, 7_200_000, 'a bare number is seconds');
    assert.equal(c.jwt.issuer, 'https://oidc.example.org');
    assert.equal(c.default_jwt_svid_ttl, 90_000);
    assert.equal(c.bundle_refresh_hint, 300_000);
    assert.equal(
      compile({ ...TD, federated_bundle_refresh_interval: '2s' }).federated_bundle_refresh_interval,
      2000,
    );
    rejects(
      { ...TD, federated_bundle_refresh_interval: '10ms' },
      'config: federated_bundle_refresh_interval: must be between 100ms and 1h',
    );
  });

  it('takes data_dir from the file and derives paths without doubling the slash', () => {
    const c = compile({ ...TD, data_dir: '/srv/t/' });
    assert.equal(c.admin_socket, '/srv/t/admin.sock');
    assert.deepEqual(c.datastore, { kind: 'sqlite', path: '/srv/t/datastore.sqlite3' });
    assert.equal(compile({ ...TD, admin_socket: '/run/t.sock' }).admin_socket, '/run/t.sock');
  });

  it('selects PostgreSQL when datastore_url is set', () => {
    const c = compile({ ...TD, datastore_url: 'postgres://u@db/t', datastore_pool_size: 4 });
    assert.deepEqual(c.datastore, { kind: 'postgres', url: 'postgres://u@db/t', poolSize: 4 });
    const fromEnv = compile(TD, { TESSERA_DATASTORE_URL: 'postgres://env/t' });
    assert.deepEqual(fromEnv.datastore, {
      kind: 'postgres',
      url: 'postgres://env/t',
      poolSize: 10,
    });
  });

  it('precedence: flags over environment over file over defaults', () => {
    const file = { ...TD, listen: '0.0.0.0:1000', log_level: 'warn', data_dir: '/file' };
    assert.equal(compile(file).listen, '0.0.0.0:1000');
    const env = { TESSERA_LISTEN: '0.0.0.0:2000', TESSERA_LOG_LEVEL: 'debug' };
    const withEnv = compile(file, env);
    assert.equal(withEnv.listen, '0.0.0.0:2000');
    assert.equal(withEnv.log_level, 'debug');
    assert.equal(withEnv.data_dir, '/file');
    const withFlags = compile(file, env, { listen: '0.0.0.0:3000', log_level: undefined });
    assert.equal(withFlags.listen, '0.0.0.0:3000');
    assert.equal(withFlags.log_level, 'debug', 'an undefined flag does not override');
  });

  it('ignores empty environment values and reads every documented variable', () => {
    assert.equal(compile(TD, { TESSERA_LISTEN: '' }).listen, '127.0.0.1:8081');
    const env: Record<string, string> = {
      TESSERA_TRUST_DOMAIN: 'env.org',
      TESSERA_DATA_DIR: '/env',
      TESSERA_LISTEN: '10.0.0.1:1',
      TESSERA_HEALTH_LISTEN: '',
      TESSERA_ADMIN_SOCKET: '/env/a.sock',
      TESSERA_LOG_LEVEL: 'error',
      TESSERA_LOG_FORMAT: 'text',
    };
    const c = compile({}, env);
    assert.equal(c.trust_domain, 'env.org');
    assert.equal(c.data_dir, '/env');
    assert.equal(c.listen, '10.0.0.1:1');
    assert.equal(c.health_listen, '127.0.0.1:8082');
    assert.equal(c.admin_socket, '/env/a.sock');
    assert.equal(c.log_level, 'error');
    assert.equal(c.log_format, 'text');
    assert.deepEqual(Object.keys(serverEnv).sort(), [
      'TESSERA_ADMIN_SOCKET',
      'TESSERA_DATASTORE_URL',
      'TESSERA_DATA_DIR',
      'TESSERA_HEALTH_LISTEN',
      'TESSERA_LISTEN',
      'TESSERA_LOG_FORMAT',
      'TESSERA_LOG_LEVEL',
      'TESSERA_TRUST_DOMAIN',
    ]);
  });

  it('returns a deeply frozen object', () => {
    const c = compile(TD);
    assert.ok(Object.isFrozen(c));
    assert.ok(Object.isFrozen(c.ca));
    assert.ok(Object.isFrozen(c.datastore));
    assert.ok(Object.isFrozen(c.node_attestors.join_token));
    assert.throws(() => {
      (c as { listen: string }).listen = 'x';
    }, TypeError);
  });

  it('rejects unknown keys at the root and nested, naming the path', () => {
    rejects({ ...TD, bogus: 1 }, 'config: (root): unknown key "bogus"');
    rejects({ ...TD, ca: { x: 1 } }, 'config: ca: unknown key "x"');
    rejects(
      { ...TD, node_attestors: { x509pop: { ca_bundle_file: 'a', y: 1 } } },
      'config: node_attestors.x509pop: unknown key "y"',
    );
  });

  it('rejects an unknown flag like an unknown key', () => {
    assert.throws(() => compile(TD, {}, { lisen: '0.0.0.0:1' }), {
      name: 'InvalidArgumentError',
      message: 'config: (root): unknown key "lisen"',
    });
  });

  it('rejects a bad trust domain with its rule', () => {
    rejects(
      { trust_domain: 'Example.org' },
      'config: trust_domain: invalid trust domain "Example.org": the trust domain must be lowercase',
    );
    rejects(
      { trust_domain: 'spiffe://example.org/x' },
      'config: trust_domain: invalid trust domain "spiffe://example.org/x": a trust domain ID has no path',
    );
    assert.throws(() => compile({}), {
      name: 'InvalidArgumentError',
      message:
        'config: trust_domain: required: pass --trust-domain, set TESSERA_TRUST_DOMAIN, or set trust_domain in the config file',
    });
  });

  it('rejects bad durations, naming the key path', () => {
    rejects(
      { ...TD, ca: { ttl: 'soon' } },
      'config: ca.ttl: invalid duration "soon" (use a number with a unit: ms, s, m, h, d; e.g. 90s, 1h30m)',
    );
    rejects({ ...TD, jwt: { ttl: '0s' } }, 'config: jwt.ttl: duration must be positive, got "0s"');
    rejects(
      { ...TD, default_x509_svid_ttl: '-1h' },
      'config: default_x509_svid_ttl: invalid duration "-1h" (use a number with a unit: ms, s, m, h, d; e.g. 90s, 1h30m)',
    );
    rejects(
      { ...TD, join_token_ttl: '36501d' },
      'config: join_token_ttl: duration "36501d" is too long',
    );
  });

  it('rejects bad listen addresses, naming the key', () => {
    rejects({ ...TD, listen: 'localhost' }, 'config: listen: expected HOST:PORT');
    rejects({ ...TD, listen: 'a b:80' }, 'config: listen: expected HOST:PORT');
    rejects({ ...TD, listen: '0.0.0.0:99999' }, 'config: listen: port must be 0..65535');
    rejects({ ...TD, health_listen: ':80' }, 'config: health_listen: expected HOST:PORT');
    assert.equal(compile({ ...TD, listen: '[::1]:8443' }).listen, '[::1]:8443');
    assert.equal(compile({ ...TD, health_listen: '' }).health_listen, '');
  });

  it('rejects other bad values with the key path', () => {
    assert.throws(() => compile({ ...TD, datastore_pool_size: 0 }), {
      name: 'InvalidArgumentError',
      message: /^config: datastore_pool_size: /,
    });
    assert.throws(() => compile({ ...TD, jwt: { key_type: 'dsa' } }), {
      name: 'InvalidArgumentError',
      message: /^config: jwt\.key_type: /,
    });
    assert.throws(() => compile({ ...TD, node_attestors: { x509pop: {} } }), {
      name: 'InvalidArgumentError',
      message: /^config: node_attestors\.x509pop\.ca_bundle_file: /,
    });
    assert.throws(() => compile({ ...TD, key_manager: 'hsm' }), {
      name: 'InvalidArgumentError',
      message: /^config: key_manager: /,
    });
  });
});

describe('parseConfigYaml', () => {
  it('parses a mapping; an empty document is an empty config', () => {
    assert.deepEqual(parseConfigYaml('trust_domain: example.org\nca:\n  ttl: 1h\n', 'f.yaml'), {
      trust_domain: 'example.org',
      ca: { ttl: '1h' },
    });
    assert.deepEqual(parseConfigYaml('', 'f.yaml'), {});
    assert.deepEqual(parseConfigYaml('# only a comment\n', 'f.yaml'), {});
  });

  it('rejects a top level that is not a mapping', () => {
    for (const text of ['- a\n- b\n', 'hello', '42']) {
      assert.throws(() => parseConfigYaml(text, '/etc/t.yaml'), {
        name: 'InvalidArgumentError',
        message: '/etc/t.yaml: the top level must be a mapping',
      });
    }
  });

  it('rejects invalid YAML, naming the source', () => {
    assert.throws(() => parseConfigYaml('a: [\n', '/etc/t.yaml'), {
      name: 'InvalidArgumentError',
      message: /^\/etc\/t\.yaml: invalid YAML: /,
    });
    assert.throws(() => parseConfigYaml('a: 1\na: 2\n', 'f.yaml'), {
      name: 'InvalidArgumentError',
      message: /^f\.yaml: invalid YAML: .*unique/i,
    });
  });

  it('rejects an oversized file', () => {
    assert.throws(() => parseConfigYaml('#'.repeat(MAX_CONFIG_BYTES + 1), 'big.yaml'), {
      name: 'InvalidArgumentError',
      message: 'big.yaml: config file too large',
    });
  });

  it('limits alias expansion (billion laughs)', () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 12; i++) {
      const prev = String.fromCharCode(96 + i);
      const cur = String.fromCharCode(97 + i);
      lines.push(`${cur}: &${cur} [${Array(9).fill(`*${prev}`).join(',')}]`);
    }
    assert.throws(() => parseConfigYaml(lines.join('\n'), 'bomb.yaml'), {
      name: 'InvalidArgumentError',
      message: /^bomb\.yaml: invalid YAML: /,
    });
  });

  it('sts: issuers may be empty (API-managed); ca_file and reload_interval have defaults and bounds', () => {
    const c = compile({ ...TD, public_listen: '127.0.0.1:8443', sts: {} });
    assert.equal(c.sts?.issuers.length, 0);
    assert.equal(c.sts?.ca_file, '');
    assert.equal(c.sts?.reload_interval, 5_000);
    const d = compile({
      ...TD,
      public_listen: '127.0.0.1:8443',
      sts: { ca_file: '/etc/ca.pem', reload_interval: '250ms' },
    });
    assert.equal(d.sts?.reload_interval, 250);
    assert.throws(
      () => compile({ ...TD, public_listen: '127.0.0.1:8443', sts: { reload_interval: '10ms' } }),
      { message: /sts\.reload_interval: must be between 100ms and 1h/ },
    );
  });
});
