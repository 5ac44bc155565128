// The YAML access document: shape, unknown keys, bounds, errors naming index and field.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_OBJECTS_PER_KIND, parseAccessDocument } from './access-document.ts';

const example = `
server_workloads:
  - name: orders-db
    host: db.internal
    port: 5432
    protocol: postgres
    present: postgres-password
  - name: billing-api
    host: billing.example.com
    port: 443
    protocol: https
    path_prefix: /v2
    present: header:X-Api-Key
    tls_decrypt: true
credential_providers:
  - name: orders-db-password
    type: static-secret
    config:
      secret: orders-db
      nested: { a: 1 }
access_policies:
  - name: orders-web
    client: spiffe://example.org/ns/prod/sa/web
    server: orders-db
    credential_provider: orders-db-password
    condition: now.getHours() < 18
  - name: no-ci
    client: spiffe://example.org/ci/**
    server: orders-db
    deny: true
`;

const refused = (text: string, message: string) =>
  assert.throws(() => parseAccessDocument(text), { name: 'InvalidArgumentError', message });

describe('parseAccessDocument', () => {
  it('parses the three lists with defaults for optional fields', () => {
    const doc = parseAccessDocument(example);
    assert.deepEqual(doc.serverWorkloads[0], {
      name: 'orders-db',
      host: 'db.internal',
      port: 5432,
      protocol: 'postgres',
      pathPrefix: '',
      present: 'postgres-password',
      tls: false,
      tlsCa: '',
      tlsDecrypt: false,
    });
    assert.equal(doc.serverWorkloads[1]?.pathPrefix, '/v2');
    assert.equal(doc.serverWorkloads[1]?.tls, true);
    assert.equal(doc.serverWorkloads[1]?.tlsDecrypt, true);
    assert.deepEqual(doc.credentialProviders, [
      {
        name: 'orders-db-password',
        type: 'static-secret',
        config: { secret: 'orders-db', nested: { a: 1 } },
      },
    ]);
    assert.deepEqual(doc.accessPolicies[1], {
      name: 'no-ci',
      client: 'spiffe://example.org/ci/**',
      server: 'orders-db',
      credentialProvider: '',
      condition: '',
      effect: 'deny',
    });
    assert.deepEqual(parseAccessDocument('access_policies: []').serverWorkloads, []);
  });

  it('cloud server workloads need no host or port', () => {
    const doc = parseAccessDocument(
      'server_workloads:\n  - {name: s3, protocol: aws}\n  - {name: gcs, protocol: gcp, host: storage.googleapis.com, port: 443}',
    );
    assert.deepEqual(doc.serverWorkloads, [
      {
        name: 's3',
        host: '',
        port: 0,
        protocol: 'aws',
        pathPrefix: '',
        present: '',
        tls: false,
        tlsCa: '',
        tlsDecrypt: false,
      },
      {
        name: 'gcs',
        host: 'storage.googleapis.com',
        port: 443,
        protocol: 'gcp',
        pathPrefix: '',
        present: '',
        tls: false,
        tlsCa: '',
        tlsDecrypt: false,
      },
    ]);
    refused(
      'server_workloads:\n  - {name: a, protocol: tcp, port: 1}',
      'server_workloads[0].host: is required',
    );
    refused(
      'server_workloads:\n  - {name: a, protocol: azure, present: basic}',
      'server_workloads[0].present: azure server workloads take no present: the cloud SDK fetches the credential from the agent',
    );
  });

  it('refuses malformed YAML, an empty document and a non-mapping top level', () => {
    assert.throws(
      () => parseAccessDocument('server_workloads: [\n'),
      /^InvalidArgumentError: access document: invalid YAML: /,
    );
    refused('', 'access document: empty');
    refused('- a\n- b\n', 'access document: the top level must be a mapping');
    assert.throws(
      () => parseAccessDocument('a: 1\na: 2\n'),
      /invalid YAML: Map keys must be unique/,
    );
  });

  it('refuses unknown keys with their path', () => {
    refused(
      'policies: []',
      'policies: unknown key (known: server_workloads, credential_providers, access_policies)',
    );
    refused(
      'server_workloads:\n  - {name: a, host: h, port: 1, protocol: tcp, tsl: true}',
      'server_workloads[0].tsl: unknown key (known: name, host, port, protocol, path_prefix, present, tls, tls_ca, tls_decrypt)',
    );
    refused(
      'access_policies:\n  - {name: a, client: c, server: s, provider: p}',
      'access_policies[0].provider: unknown key (known: name, client, server, credential_provider, condition, deny)',
    );
  });

  it('errors name the list index and field', () => {
    refused('server_workloads: {}', 'server_workloads: must be a list');
    refused('server_workloads: [1]', 'server_workloads[0]: must be a mapping');
    refused(
      'server_workloads:\n  - {name: a, host: h, port: 1, protocol: tcp}\n  - {name: b, host: h, port: "80", protocol: tcp}',
      'server_workloads[1].port: must be an integer',
    );
    refused(
      'server_workloads:\n  - {name: a, host: h, protocol: tcp}',
      'server_workloads[0].port: is required',
    );
    refused(
      'server_workloads:\n  - {name: a, host: h, port: 5432, protocol: postgres, present: basic}',
      'server_workloads[0].present: basic is for http and https server workloads, not postgres',
    );
    refused(
      'credential_providers:\n  - {name: p, type: t, config: [1]}',
      'credential_providers[0].config: must be a mapping',
    );
    refused('credential_providers:\n  - {name: p}', 'credential_providers[0].type: is required');
    refused(
      'access_policies:\n  - {name: a, client: c, server: s, credential_provider: p}\n  - {name: b, client: 5, server: s}',
      'access_policies[1].client: must be a string',
    );
    refused(
      'access_policies:\n  - {name: a, client: c, server: s, deny: "yes"}',
      'access_policies[0].deny: must be true or false',
    );
    refused(
      'access_policies:\n  - {name: a, client: c, server: s}',
      'access_policies[0].credential_provider: an allow policy needs a credential provider',
    );
  });

  it('refuses a name used twice within a kind', () => {
    refused(
      'server_workloads:\n  - {name: a, host: h, port: 1, protocol: tcp}\n  - {name: a, host: h, port: 2, protocol: tcp}',
      'server_workloads[1].name: "a" is already used by server_workloads[0]',
    );
  });

  it('is bounded: 1 MiB, 10,000 objects per kind, YAML aliases', () => {
    refused('#' + 'x'.repeat(1024 * 1024), 'access document: larger than 1 MiB');
    const many = 'access_policies:\n' + '  - {}\n'.repeat(MAX_OBJECTS_PER_KIND + 1);
    refused(many, 'access_policies: more than 10000 objects');
    const bomb =
      'a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n' +
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nserver_workloads: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n';
    assert.throws(
      () => parseAccessDocument(bomb),
      /^InvalidArgumentError: access document: invalid YAML: /,
    );
  });
});
