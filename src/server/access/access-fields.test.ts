// Validation of server workload and policy fields: exact errors naming the field.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkPolicyFields,
  checkServerWorkload,
  type AccessPolicyInput,
  type ServerWorkloadInput,
} from './access-fields.ts';

const w = (over: Partial<ServerWorkloadInput> = {}): ServerWorkloadInput => ({
  name: 'api',
  host: 'api.internal',
  port: 443,
  protocol: 'https',
  pathPrefix: '',
  present: '',
  tls: false,
  tlsCa: '',
  tlsDecrypt: false,
  ...over,
});

const refused = (over: Partial<ServerWorkloadInput>, message: string, at = '') =>
  assert.throws(() => checkServerWorkload(at, w(over)), { name: 'InvalidArgumentError', message });

describe('server workload fields', () => {
  it('accepts hostnames, IPv4 and IPv6 addresses, and every present per protocol', () => {
    for (const host of ['api.internal', 'localhost', '10.0.0.1', '::1', 'fd00::5', 'a-b.c.']) {
      assert.equal(checkServerWorkload('', w({ host })).host, host);
    }
    const ok: Array<[string, string]> = [
      ['https', 'authorization-bearer'],
      ['http', 'header:X-Api-Key'],
      ['https', 'basic'],
      ['http', 'query:api_key'],
      ['https', 'aws-sigv4'],
      ['postgres', 'postgres-password'],
      ['redis', 'redis-auth'],
      ['mysql', 'mysql-password'],
      ['tcp', ''],
      ['postgres', ''],
    ];
    for (const [protocol, present] of ok) {
      assert.deepEqual(checkServerWorkload('', w({ protocol, present })), {
        ...w({ protocol, present, tls: protocol === 'https' }),
      });
    }
    assert.equal(checkServerWorkload('', w({ pathPrefix: '/v1/' })).pathPrefix, '/v1/');
  });

  it('refuses bad names, hosts, ports and protocols, naming the field', () => {
    refused({ name: '' }, 'name: is required');
    refused(
      { name: 'Bad Name' },
      'name: "Bad Name" is not a valid name (lowercase letters, digits, ".", "_", "-"; at most 63 characters, starting and ending with a letter or digit)',
    );
    refused({ host: '' }, 'host: is required');
    refused({ host: 'https://api' }, 'host: "https://api" has a scheme: give the host only');
    refused({ host: 'api/v1' }, 'host: "api/v1" is not a host (no path, query or userinfo)');
    refused({ host: 'a_b' }, 'host: "a_b" is neither a hostname nor an IP address');
    refused({ host: 'x'.repeat(254) }, 'host: longer than 253 characters');
    refused({ port: 0 }, 'port: must be an integer between 1 and 65535');
    refused({ port: 65536 }, 'port: must be an integer between 1 and 65535');
    refused({ port: 1.5 }, 'port: must be an integer between 1 and 65535');
    refused(
      { protocol: 'ftp' },
      'protocol: "ftp" is not one of http, https, postgres, redis, mysql, tcp, aws, gcp, azure',
    );
    refused({ protocol: '' }, 'protocol: is required');
  });

  it('cloud protocols (aws, gcp, azure): host and port optional, nothing presented', () => {
    for (const protocol of ['aws', 'gcp', 'azure']) {
      assert.deepEqual(checkServerWorkload('', w({ protocol, host: '', port: 0 })), {
        ...w({ protocol, host: '', port: 0 }),
      });
      assert.deepEqual(
        checkServerWorkload('', w({ protocol, host: 's3.eu-west-1.amazonaws.com', port: 443 })),
        { ...w({ protocol, host: 's3.eu-west-1.amazonaws.com', port: 443 }) },
      );
    }
    refused(
      { protocol: 'aws', host: 'https://s3' },
      'host: "https://s3" has a scheme: give the host only',
    );
    refused({ protocol: 'gcp', port: 70000 }, 'port: must be an integer between 1 and 65535');
    refused(
      { protocol: 'aws', present: 'aws-sigv4' },
      'present: aws server workloads take no present: the cloud SDK fetches the credential from the agent',
    );
    refused(
      { protocol: 'azure', present: 'authorization-bearer' },
      'present: azure server workloads take no present: the cloud SDK fetches the credential from the agent',
    );
    refused({ protocol: 'gcp', pathPrefix: '/v1' }, 'path_prefix: only http and https have paths');
    refused({ protocol: 'https', host: '', port: 0 }, 'host: is required');
    refused({ protocol: 'tcp', port: 0 }, 'port: must be an integer between 1 and 65535');
  });

  it('path_prefix: http(s) only, starting with "/", no query', () => {
    refused({ pathPrefix: 'v1' }, 'path_prefix: must start with "/"');
    refused(
      { pathPrefix: '/a?b' },
      'path_prefix: must not contain spaces, control characters, "?" or "#"',
    );
    refused(
      { protocol: 'postgres', pathPrefix: '/x' },
      'path_prefix: only http and https have paths',
    );
  });

  it('present: checked against the protocol, header and query names checked', () => {
    refused(
      { present: 'bearer' },
      'present: "bearer" is not one of authorization-bearer, header:NAME, basic, query:NAME, postgres-password, redis-auth, mysql-password, aws-sigv4',
    );
    refused(
      { present: 'header' },
      'present: "header" is not one of authorization-bearer, header:NAME, basic, query:NAME, postgres-password, redis-auth, mysql-password, aws-sigv4',
    );
    refused(
      { present: 'basic:x' },
      'present: "basic:x" is not one of authorization-bearer, header:NAME, basic, query:NAME, postgres-password, redis-auth, mysql-password, aws-sigv4',
    );
    refused({ present: 'header:' }, 'present: "header:": "" is not a valid header name');
    refused(
      { present: 'header:X Key' },
      'present: "header:X Key": "X Key" is not a valid header name',
    );
    refused({ present: 'query:a&b' }, 'present: "query:a&b": "a&b" is not a valid query name');
    refused(
      { present: 'postgres-password' },
      'present: postgres-password is for postgres server workloads, not https',
    );
    refused(
      { protocol: 'postgres', present: 'redis-auth' },
      'present: redis-auth is for redis server workloads, not postgres',
    );
    refused(
      { protocol: 'redis', present: 'mysql-password' },
      'present: mysql-password is for mysql server workloads, not redis',
    );
    refused(
      { protocol: 'tcp', present: 'authorization-bearer' },
      'present: authorization-bearer is for http and https server workloads, not tcp',
    );
    refused(
      { protocol: 'mysql', present: 'header:X' },
      'present: header is for http and https server workloads, not mysql',
    );
  });

  it('errors carry the document position', () => {
    refused(
      { port: 0 },
      'server_workloads[2].port: must be an integer between 1 and 65535',
      'server_workloads[2].',
    );
  });
});

const p = (over: Partial<AccessPolicyInput> = {}): AccessPolicyInput => ({
  name: 'web-db',
  client: 'spiffe://example.org/web',
  server: 'db',
  credentialProvider: 'db-password',
  condition: '',
  deny: false,
  ...over,
});

describe('access policy fields', () => {
  it('an allow policy names a provider; a deny policy names none', () => {
    assert.equal(checkPolicyFields('', p()).effect, 'allow');
    assert.deepEqual(checkPolicyFields('', p({ deny: true, credentialProvider: '' })), {
      name: 'web-db',
      client: 'spiffe://example.org/web',
      server: 'db',
      credentialProvider: '',
      condition: '',
      effect: 'deny',
    });
    assert.throws(() => checkPolicyFields('', p({ credentialProvider: '' })), {
      message: 'credential_provider: an allow policy needs a credential provider',
    });
    assert.throws(() => checkPolicyFields('', p({ deny: true })), {
      message: 'credential_provider: a deny policy releases nothing: leave it empty',
    });
  });

  it('refuses missing and oversized fields, naming them', () => {
    assert.throws(() => checkPolicyFields('', p({ client: '' })), {
      message: 'client: is required',
    });
    assert.throws(() => checkPolicyFields('', p({ server: '' })), {
      message: 'server: is required',
    });
    assert.throws(
      () => checkPolicyFields('', p({ server: 'A' })),
      /^InvalidArgumentError: server: "A" is not a valid name/,
    );
    assert.throws(() => checkPolicyFields('', p({ condition: 'x'.repeat(4097) })), {
      message: 'condition: longer than 4096 characters',
    });
    assert.throws(() => checkPolicyFields('access_policies[3].', p({ client: 'x'.repeat(2049) })), {
      message: 'access_policies[3].client: longer than 2048 characters',
    });
  });
});
