import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ENTRY_LIMITS,
  type EntryInput,
  checkDnsName,
  entryIdentityKey,
  isExpired,
  validateEntryInput,
} from './entry.ts';
import { TrustDomain } from './spiffe-id.ts';

const td = TrustDomain.parse('example.org');

function input(over: Partial<EntryInput> = {}): EntryInput {
  return {
    spiffeId: 'spiffe://example.org/web',
    parentId: 'spiffe://example.org/spire/agent/join_token/a',
    selectors: ['unix:uid:1000'],
    ...over,
  };
}

function rejects(over: Partial<EntryInput>, message: string): void {
  assert.throws(() => validateEntryInput(input(over), td), {
    name: 'InvalidArgumentError',
    message,
  });
}

describe('validateEntryInput', () => {
  it('fills defaults and canonicalizes selectors', () => {
    const v = validateEntryInput(
      input({ selectors: ['unix:uid:1000', 'docker:image:x', 'unix:uid:1000'] }),
      td,
    );
    assert.deepEqual(v, {
      spiffeId: 'spiffe://example.org/web',
      parentId: 'spiffe://example.org/spire/agent/join_token/a',
      selectors: [
        { type: 'docker', value: 'image:x' },
        { type: 'unix', value: 'uid:1000' },
      ],
      x509SvidTtl: 0,
      jwtSvidTtl: 0,
      dnsNames: [],
      federatesWith: [],
      admin: false,
      downstream: false,
      expiresAt: null,
      hint: '',
    });
  });

  it('keeps every optional field', () => {
    const v = validateEntryInput(
      input({
        x509SvidTtl: 3600,
        jwtSvidTtl: 300,
        dnsNames: ['web.example.org', '*.svc.example.org', 'web.example.org'],
        federatesWith: ['other.org', 'spiffe://third.org', 'other.org'],
        admin: true,
        downstream: true,
        expiresAt: 1_700_000_000_000,
        hint: 'external',
      }),
      td,
    );
    assert.equal(v.x509SvidTtl, 3600);
    assert.equal(v.jwtSvidTtl, 300);
    assert.deepEqual(v.dnsNames, ['web.example.org', '*.svc.example.org']);
    assert.deepEqual(v.federatesWith, ['other.org', 'third.org']);
    assert.equal(v.admin, true);
    assert.equal(v.downstream, true);
    assert.equal(v.expiresAt, 1_700_000_000_000);
    assert.equal(v.hint, 'external');
  });

  it('spiffe_id: syntax, leaf, trust domain and the reserved /spire/ path', () => {
    rejects(
      { spiffeId: 'spiffe://example.org/a//b' },
      'spiffe_id: invalid SPIFFE ID "spiffe://example.org/a//b": the path has an empty segment',
    );
    rejects(
      { spiffeId: 'spiffe://example.org' },
      'spiffe_id: invalid SPIFFE ID "spiffe://example.org": a leaf SVID needs a path (the trust domain ID is reserved for CAs)',
    );
    rejects(
      { spiffeId: 'spiffe://other.org/web' },
      'spiffe_id: "spiffe://other.org/web" is not in trust domain "example.org"',
    );
    for (const id of ['spiffe://example.org/spire/server', 'spiffe://example.org/spire/x/y']) {
      rejects(
        { spiffeId: id },
        'spiffe_id: paths under /spire/ are reserved for the server and agents',
      );
    }
    // Only the /spire/ segment is reserved, not every path that starts with those letters.
    assert.equal(
      validateEntryInput(input({ spiffeId: 'spiffe://example.org/spireish' }), td).spiffeId,
      'spiffe://example.org/spireish',
    );
  });

  it('parent_id: syntax and trust domain; the trust-domain ID is allowed', () => {
    rejects(
      { parentId: 'spiffe://example.org/a/' },
      'parent_id: invalid SPIFFE ID "spiffe://example.org/a/": the path must not end with "/"',
    );
    rejects(
      { parentId: 'spiffe://other.org/agent' },
      'parent_id: "spiffe://other.org/agent" is not in trust domain "example.org"',
    );
    assert.equal(
      validateEntryInput(input({ parentId: 'spiffe://example.org' }), td).parentId,
      'spiffe://example.org',
    );
  });

  it('selectors: required, limited, each valid', () => {
    rejects({ selectors: [] }, 'selectors: at least one selector is required');
    rejects(
      { selectors: Array.from({ length: ENTRY_LIMITS.selectors + 1 }, (_, i) => `unix:uid:${i}`) },
      'selectors: at most 64 selectors',
    );
    assert.equal(
      validateEntryInput(
        input({ selectors: Array.from({ length: 64 }, (_, i) => `unix:uid:${i}`) }),
        td,
      ).selectors.length,
      64,
    );
    rejects(
      { selectors: ['unix:uid:0', 'nocolon'] },
      'selectors: invalid selector "nocolon": expected TYPE:VALUE',
    );
  });

  it('x509_svid_ttl and jwt_svid_ttl: whole seconds within limits', () => {
    const msg = (n: string) => `${n}: must be a whole number of seconds between 0 and 315360000`;
    for (const bad of [-1, 1.5, ENTRY_LIMITS.maxTtlSeconds + 1, Number.NaN]) {
      rejects({ x509SvidTtl: bad }, msg('x509_svid_ttl'));
      rejects({ jwtSvidTtl: bad }, msg('jwt_svid_ttl'));
    }
    const v = validateEntryInput(
      input({ x509SvidTtl: ENTRY_LIMITS.maxTtlSeconds, jwtSvidTtl: 0 }),
      td,
    );
    assert.equal(v.x509SvidTtl, ENTRY_LIMITS.maxTtlSeconds);
  });

  it('dns_names: valid names, wildcard only as first label, limited', () => {
    for (const bad of [
      '',
      'a..b',
      '-a.org',
      'a-.org',
      'a_b.org',
      'a.*.org',
      'x'.repeat(64) + '.org',
    ]) {
      rejects({ dnsNames: [bad] }, `dns_names: "${bad}" is not a valid DNS name`);
    }
    const long = Array.from({ length: 5 }, () => 'a'.repeat(63)).join('.');
    rejects({ dnsNames: [long] }, `dns_names: "${long.slice(0, 80)}" is not a valid DNS name`);
    rejects(
      { dnsNames: Array.from({ length: 33 }, (_, i) => `h${i}.example.org`) },
      'dns_names: at most 32 names',
    );
  });

  it('federates_with: valid trust domains, not our own, limited', () => {
    rejects(
      { federatesWith: ['Other.org'] },
      'federates_with: invalid trust domain "Other.org": the trust domain must be lowercase',
    );
    rejects(
      { federatesWith: ['example.org'] },
      'federates_with: "example.org" is this server\'s own trust domain',
    );
    rejects(
      { federatesWith: ['spiffe://example.org'] },
      'federates_with: "example.org" is this server\'s own trust domain',
    );
    rejects(
      { federatesWith: Array.from({ length: 33 }, (_, i) => `td${i}.org`) },
      'federates_with: at most 32 trust domains',
    );
  });

  it('hint: at most 1024 bytes', () => {
    assert.equal(validateEntryInput(input({ hint: 'h'.repeat(1024) }), td).hint.length, 1024);
    rejects({ hint: 'h'.repeat(1025) }, 'hint: at most 1024 bytes');
    rejects({ hint: 'é'.repeat(513) }, 'hint: at most 1024 bytes');
  });

  it('expires_at: a positive integer timestamp or null', () => {
    for (const bad of [0, -1, 1.5]) {
      rejects({ expiresAt: bad }, 'expires_at: must be a positive timestamp');
    }
    assert.equal(validateEntryInput(input({ expiresAt: null }), td).expiresAt, null);
  });
});

describe('entry helpers', () => {
  it('checkDnsName accepts hostnames and a leading wildcard', () => {
    checkDnsName('a.example.org');
    checkDnsName('*.example.org');
    checkDnsName('localhost');
  });

  it('entryIdentityKey ignores selector order', () => {
    const base = { spiffeId: 'spiffe://td/a', parentId: 'spiffe://td/p' };
    const x = { type: 'unix', value: 'uid:0' };
    const y = { type: 'unix', value: 'gid:0' };
    assert.equal(
      entryIdentityKey({ ...base, selectors: [x, y] }),
      entryIdentityKey({ ...base, selectors: [y, x] }),
    );
    assert.notEqual(
      entryIdentityKey({ ...base, selectors: [x] }),
      entryIdentityKey({ ...base, parentId: 'spiffe://td/q', selectors: [x] }),
    );
  });

  it('isExpired: null never expires; expiry is inclusive', () => {
    assert.equal(isExpired({ expiresAt: null }, 1e15), false);
    assert.equal(isExpired({ expiresAt: 1000 }, 999), false);
    assert.equal(isExpired({ expiresAt: 1000 }, 1000), true);
  });
});
