import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../../core/errors.ts';
import {
  compareSpecificity,
  matchesSpiffeId,
  parseClientPattern,
  type ClientPattern,
} from './client-pattern.ts';

function refuses(text: string, message: string): void {
  assert.throws(
    () => parseClientPattern(text),
    (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError);
      assert.equal(e.message, `client: invalid pattern "${text}": ${message}`);
      return true;
    },
  );
}

const m = (pattern: string, id: string) => matchesSpiffeId(parseClientPattern(pattern), id);

describe('parseClientPattern', () => {
  it('tells the three kinds apart', () => {
    assert.equal(parseClientPattern('spiffe://td/ns/prod/sa/web').kind, 'exact');
    assert.equal(parseClientPattern('spiffe://td').kind, 'trust-domain');
    const g = parseClientPattern('spiffe://td/ns/*/sa/**');
    assert.equal(g.kind, 'glob');
    assert.deepEqual(g.segments, ['ns', '*', 'sa', '**']);
    assert.equal(g.literals, 2);
    assert.equal(g.rest, true);
    assert.equal(g.trustDomain, 'td');
  });

  it('refuses wildcards inside a segment, in the trust domain, or a non-final **', () => {
    refuses(
      'spiffe://td/ns/web-*',
      '"web-*": a wildcard must be a whole segment ("*" or a final "**")',
    );
    refuses('spiffe://td/***', '"***": a wildcard must be a whole segment ("*" or a final "**")');
    refuses(
      'spiffe://*.td/a',
      'the trust domain cannot have wildcards (use spiffe://TRUST_DOMAIN for all of it)',
    );
    refuses(
      'spiffe://td*',
      'the trust domain cannot have wildcards (use spiffe://TRUST_DOMAIN for all of it)',
    );
    refuses('spiffe://td/**/web', '"**" must be the last segment');
  });

  it('applies the SPIFFE ID rules to the rest, naming the rule', () => {
    refuses('', 'the pattern is empty');
    refuses('http://td/a', 'the scheme must be "spiffe"');
    refuses('spiffe://TD/a', 'the trust domain must be lowercase');
    refuses('spiffe://td/a//b', 'the path has an empty segment');
    refuses('spiffe://td/*/a/', 'the path must not end with "/"');
    refuses('spiffe://td/*/../a', 'the path has a ".." segment');
    refuses('spiffe://td/*/a b', 'the path has a character outside [a-zA-Z0-9._-]: " "');
    refuses('spiffe:/td/*', 'it must start with "spiffe://"');
  });

  it('bounds the length', () => {
    assert.throws(
      () => parseClientPattern('spiffe://td/' + 'a'.repeat(3000)),
      /longer than 2048 bytes/,
    );
  });
});

describe('matching', () => {
  it('exact matches that ID only', () => {
    assert.equal(m('spiffe://td/a/b', 'spiffe://td/a/b'), true);
    assert.equal(m('spiffe://td/a/b', 'spiffe://td/a/b/c'), false);
    assert.equal(m('spiffe://td/a/b', 'spiffe://other/a/b'), false);
  });

  it('a trust domain matches its workload IDs, not itself or other domains', () => {
    assert.equal(m('spiffe://td', 'spiffe://td/x'), true);
    assert.equal(m('spiffe://td', 'spiffe://td/x/y/z'), true);
    assert.equal(m('spiffe://td', 'spiffe://td'), false);
    assert.equal(m('spiffe://td', 'spiffe://td2/x'), false);
  });

  it('* is exactly one segment', () => {
    assert.equal(m('spiffe://td/ns/*/sa/web', 'spiffe://td/ns/prod/sa/web'), true);
    assert.equal(m('spiffe://td/ns/*/sa/web', 'spiffe://td/ns/a/b/sa/web'), false);
    assert.equal(m('spiffe://td/ns/*', 'spiffe://td/ns'), false);
    assert.equal(m('spiffe://td/*', 'spiffe://td/anything'), true);
  });

  it('a final ** is one or more segments', () => {
    assert.equal(m('spiffe://td/ns/prod/**', 'spiffe://td/ns/prod/sa/web'), true);
    assert.equal(m('spiffe://td/ns/prod/**', 'spiffe://td/ns/prod/x'), true);
    assert.equal(m('spiffe://td/ns/prod/**', 'spiffe://td/ns/prod'), false);
    assert.equal(m('spiffe://td/ns/prod/**', 'spiffe://td/ns/dev/x'), false);
    assert.equal(m('spiffe://td/*/**', 'spiffe://td/a/b'), true);
    assert.equal(m('spiffe://td/*/**', 'spiffe://td/a'), false);
  });

  it('an invalid ID matches nothing', () => {
    assert.equal(m('spiffe://td', 'not an id'), false);
  });
});

describe('compareSpecificity', () => {
  const order = (patterns: string[]) =>
    patterns
      .map(parseClientPattern)
      .sort((a: ClientPattern, b: ClientPattern) => compareSpecificity(a, b))
      .map((p) => p.source);

  it('exact > glob > trust domain; globs by literals, then without **, then longer', () => {
    assert.deepEqual(
      order([
        'spiffe://td',
        'spiffe://td/*/**',
        'spiffe://td/ns/*',
        'spiffe://td/ns/**',
        'spiffe://td/ns/*/sa/*',
        'spiffe://td/ns/prod/sa/web',
        'spiffe://td/ns/prod/*',
        'spiffe://td/ns/*/*',
      ]),
      [
        'spiffe://td/ns/prod/sa/web',
        'spiffe://td/ns/*/sa/*', // 2 literals, 4 segments
        'spiffe://td/ns/prod/*', // 2 literals, 3 segments
        'spiffe://td/ns/*/*',
        'spiffe://td/ns/*',
        'spiffe://td/ns/**',
        'spiffe://td/*/**',
        'spiffe://td',
      ],
    );
  });

  it('equal shapes compare equal (the policy name decides)', () => {
    assert.equal(
      compareSpecificity(
        parseClientPattern('spiffe://td/a/*'),
        parseClientPattern('spiffe://td/b/*'),
      ),
      0,
    );
  });
});
