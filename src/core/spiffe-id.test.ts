import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from './errors.ts';
import {
  MAX_SPIFFE_ID_BYTES,
  MAX_TRUST_DOMAIN_BYTES,
  SpiffeId,
  TrustDomain,
  agentId,
  isAgentId,
  parseLeafId,
  serverId,
} from './spiffe-id.ts';

function rejects(text: string, rule: string): void {
  assert.throws(
    () => SpiffeId.parse(text),
    (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${e}`);
      assert.equal(e.code, 'invalid_argument');
      assert.equal(e.message, `invalid SPIFFE ID "${text}": ${rule}`);
      return true;
    },
  );
}

describe('SpiffeId.parse: valid IDs', () => {
  it('parses a trust-domain ID and a workload ID', () => {
    const root = SpiffeId.parse('spiffe://example.org');
    assert.equal(root.trustDomain.name, 'example.org');
    assert.equal(root.path, '');
    assert.equal(root.isTrustDomainId, true);
    const id = SpiffeId.parse('spiffe://example.org/ns/prod/sa/web');
    assert.equal(id.trustDomain.name, 'example.org');
    assert.equal(id.path, '/ns/prod/sa/web');
    assert.equal(id.isTrustDomainId, false);
    assert.equal(id.toString(), 'spiffe://example.org/ns/prod/sa/web');
  });

  it('accepts every allowed trust-domain character and an IPv4 trust domain', () => {
    assert.equal(SpiffeId.parse('spiffe://a-b_c.d0-9').trustDomain.name, 'a-b_c.d0-9');
    const ip = SpiffeId.parse('spiffe://192.168.1.10/x');
    assert.equal(ip.trustDomain.name, '192.168.1.10');
    assert.equal(ip.path, '/x');
  });

  it('accepts every allowed path character, keeping case', () => {
    const id = SpiffeId.parse('spiffe://example.org/AZaz09._-/x.y/...');
    assert.equal(id.path, '/AZaz09._-/x.y/...');
    assert.notEqual(
      SpiffeId.parse('spiffe://example.org/Web').toString(),
      SpiffeId.parse('spiffe://example.org/web').toString(),
    );
  });

  it('accepts an ID of exactly 2048 bytes and rejects 2049', () => {
    const prefix = 'spiffe://example.org/';
    const exact = prefix + 'a'.repeat(MAX_SPIFFE_ID_BYTES - prefix.length);
    assert.equal(Buffer.byteLength(exact), 2048);
    assert.equal(SpiffeId.parse(exact).toString(), exact);
    const tooLong = exact + 'a';
    assert.throws(() => SpiffeId.parse(tooLong), {
      name: 'InvalidArgumentError',
      message: `invalid SPIFFE ID "${tooLong.slice(0, 117)}...": longer than 2048 bytes`,
    });
  });

  it('accepts a trust domain of 255 bytes', () => {
    const td = 'a'.repeat(MAX_TRUST_DOMAIN_BYTES);
    assert.equal(SpiffeId.parse(`spiffe://${td}/x`).trustDomain.name, td);
  });

  it('equals, memberOf and fromSegments', () => {
    const td = TrustDomain.parse('example.org');
    const a = SpiffeId.fromSegments(td, 'ns', 'prod');
    assert.equal(a.toString(), 'spiffe://example.org/ns/prod');
    assert.ok(a.equals(SpiffeId.parse('spiffe://example.org/ns/prod')));
    assert.ok(!a.equals(SpiffeId.parse('spiffe://example.org/ns')));
    assert.ok(a.memberOf(td));
    assert.ok(!a.memberOf(TrustDomain.parse('other.org')));
    assert.throws(() => SpiffeId.fromSegments(td, 'a/b', '..'), {
      name: 'InvalidArgumentError',
      message: 'invalid SPIFFE ID "spiffe://example.org/a/b/..": the path has a ".." segment',
    });
  });
});

describe('SpiffeId.parse: each rejection names its rule', () => {
  it('rejects an empty ID', () => rejects('', 'the ID is empty'));
  it('rejects a missing scheme', () => rejects('example.org/x', 'it must start with "spiffe://"'));
  it('rejects another scheme', () =>
    rejects('https://example.org/x', 'the scheme must be "spiffe"'));
  it('rejects an uppercase scheme', () => {
    rejects('SPIFFE://example.org/x', 'the scheme must be lowercase "spiffe"');
    rejects('Spiffe://example.org/x', 'the scheme must be lowercase "spiffe"');
  });
  it('rejects a missing trust domain', () => {
    rejects('spiffe://', 'the trust domain is missing');
    rejects('spiffe:///x', 'the trust domain is missing');
  });
  it('rejects an uppercase trust domain', () =>
    rejects('spiffe://Example.org/x', 'the trust domain must be lowercase'));
  it('rejects trust-domain characters outside [a-z0-9._-]', () => {
    rejects('spiffe://exa$mple.org/x', 'the trust domain has a character outside [a-z0-9._-]: "$"');
    rejects('spiffe://exa mple/x', 'the trust domain has a character outside [a-z0-9._-]: " "');
    rejects('spiffe://exämple.org', 'the trust domain has a character outside [a-z0-9._-]: "ä"');
  });
  it('rejects percent-encoding in the trust domain and the path', () => {
    rejects('spiffe://example%2eorg/x', 'percent-encoding is not allowed in the trust domain');
    rejects('spiffe://example.org/a%20b', 'percent-encoding is not allowed in the path');
  });
  it('rejects an IPv6 trust domain', () => {
    rejects('spiffe://[::1]/x', 'an IPv6 trust domain is not allowed');
    rejects('spiffe://[2001:db8::1]', 'an IPv6 trust domain is not allowed');
  });
  it('rejects a port', () => rejects('spiffe://example.org:8443/x', 'a port is not allowed'));
  it('rejects userinfo', () => {
    rejects('spiffe://user@example.org/x', 'userinfo is not allowed');
    rejects('spiffe://user:pw@example.org/x', 'userinfo is not allowed');
  });
  it('rejects a query', () => {
    rejects('spiffe://example.org/x?a=b', 'a query is not allowed');
    rejects('spiffe://example.org?a=b', 'a query is not allowed');
  });
  it('rejects a fragment', () => {
    rejects('spiffe://example.org/x#frag', 'a fragment is not allowed');
    rejects('spiffe://example.org#frag', 'a fragment is not allowed');
  });
  it('rejects an empty segment', () =>
    rejects('spiffe://example.org/a//b', 'the path has an empty segment'));
  it('rejects "." and ".." segments', () => {
    rejects('spiffe://example.org/a/./b', 'the path has a "." segment');
    rejects('spiffe://example.org/a/../b', 'the path has a ".." segment');
    rejects('spiffe://example.org/..', 'the path has a ".." segment');
  });
  it('rejects a trailing slash', () => {
    rejects('spiffe://example.org/', 'the path must not end with "/"');
    rejects('spiffe://example.org/a/', 'the path must not end with "/"');
  });
  it('rejects path characters outside [a-zA-Z0-9._-]', () => {
    rejects('spiffe://example.org/a b', 'the path has a character outside [a-zA-Z0-9._-]: " "');
    rejects('spiffe://example.org/a:b', 'the path has a character outside [a-zA-Z0-9._-]: ":"');
    rejects('spiffe://example.org/a+b', 'the path has a character outside [a-zA-Z0-9._-]: "+"');
    rejects('spiffe://example.org/ü', 'the path has a character outside [a-zA-Z0-9._-]: "ü"');
  });
  it('rejects a trust domain longer than 255 bytes', () => {
    const td = 'a'.repeat(MAX_TRUST_DOMAIN_BYTES + 1);
    assert.throws(() => SpiffeId.parse(`spiffe://${td}/x`), {
      name: 'InvalidArgumentError',
      message: `invalid SPIFFE ID "spiffe://${'a'.repeat(108)}...": the trust domain is longer than 255 bytes`,
    });
  });
  it('counts bytes, not characters, toward the 2048 limit', () => {
    // 1000 two-byte characters in the path: under 2048 characters, over 2048 bytes.
    const text = 'spiffe://example.org/' + 'é'.repeat(1020);
    assert.ok(text.length < 2048);
    assert.throws(() => SpiffeId.parse(text), {
      name: 'InvalidArgumentError',
      message: `invalid SPIFFE ID "${text.slice(0, 117)}...": longer than 2048 bytes`,
    });
  });
});

describe('TrustDomain.parse', () => {
  it('parses a bare name and a trust-domain ID to the same trust domain', () => {
    const a = TrustDomain.parse('example.org');
    const b = TrustDomain.parse('spiffe://example.org');
    assert.equal(a.name, 'example.org');
    assert.ok(a.equals(b));
    assert.equal(a.id, 'spiffe://example.org');
    assert.equal(String(b), 'example.org');
    assert.equal(TrustDomain.parse('10.0.0.1').name, '10.0.0.1');
  });

  it('rejects a trust-domain ID with a path', () => {
    assert.throws(() => TrustDomain.parse('spiffe://example.org/x'), {
      name: 'InvalidArgumentError',
      message: 'invalid trust domain "spiffe://example.org/x": a trust domain ID has no path',
    });
  });

  it('rejects bad names with the rule, labelled as a trust domain', () => {
    const cases: Array<[string, string]> = [
      ['', 'the trust domain is empty'],
      ['Example.org', 'the trust domain must be lowercase'],
      ['exa%41mple', 'percent-encoding is not allowed in the trust domain'],
      ['[::1]', 'an IPv6 trust domain is not allowed'],
      ['example.org:80', 'the trust domain has a character outside [a-z0-9._-]: ":"'],
      ['a/b', 'the trust domain has a character outside [a-z0-9._-]: "/"'],
    ];
    for (const [text, rule] of cases) {
      assert.throws(() => TrustDomain.parse(text), {
        name: 'InvalidArgumentError',
        message: `invalid trust domain "${text}": ${rule}`,
      });
    }
    const long = 'a'.repeat(256);
    assert.throws(() => TrustDomain.parse(long), {
      name: 'InvalidArgumentError',
      message: `invalid trust domain "${'a'.repeat(117)}...": the trust domain is longer than 255 bytes`,
    });
  });

  it('rejects an uppercase scheme in ID form', () => {
    assert.throws(() => TrustDomain.parse('SPIFFE://example.org'), {
      name: 'InvalidArgumentError',
      message: 'invalid SPIFFE ID "SPIFFE://example.org": the scheme must be lowercase "spiffe"',
    });
  });
});

describe('parseLeafId', () => {
  it('accepts a workload ID', () => {
    assert.equal(parseLeafId('spiffe://example.org/w').path, '/w');
  });

  it('rejects the trust-domain ID, naming the field', () => {
    assert.throws(() => parseLeafId('spiffe://example.org'), {
      name: 'InvalidArgumentError',
      message:
        'invalid SPIFFE ID "spiffe://example.org": a leaf SVID needs a path (the trust domain ID is reserved for CAs)',
    });
    assert.throws(() => parseLeafId('spiffe://example.org', 'spiffe_id'), {
      name: 'InvalidArgumentError',
      message:
        'invalid spiffe_id "spiffe://example.org": a leaf SVID needs a path (the trust domain ID is reserved for CAs)',
    });
  });

  it('passes syntax errors through', () => {
    assert.throws(() => parseLeafId('spiffe://example.org/a/'), {
      name: 'InvalidArgumentError',
      message: 'invalid SPIFFE ID "spiffe://example.org/a/": the path must not end with "/"',
    });
  });
});

describe('SPIRE conventions', () => {
  const td = TrustDomain.parse('example.org');
  it('serverId is spiffe://td/spire/server', () => {
    assert.equal(serverId(td).toString(), 'spiffe://example.org/spire/server');
    assert.equal(isAgentId(serverId(td)), false);
  });
  it('agentId is spiffe://td/spire/agent/<attestor>/<rest>', () => {
    const id = agentId(td, 'join_token', 'abc123');
    assert.equal(id.toString(), 'spiffe://example.org/spire/agent/join_token/abc123');
    assert.equal(isAgentId(id), true);
    assert.equal(
      agentId(td, 'x509pop', 'a', 'b').toString(),
      'spiffe://example.org/spire/agent/x509pop/a/b',
    );
    assert.equal(isAgentId(SpiffeId.parse('spiffe://example.org/spire/agentx/y')), false);
  });
  it('agentId validates its segments', () => {
    assert.throws(() => agentId(td, 'join_token', ''), {
      name: 'InvalidArgumentError',
      message:
        'invalid SPIFFE ID "spiffe://example.org/spire/agent/join_token/": the path must not end with "/"',
    });
  });
});
