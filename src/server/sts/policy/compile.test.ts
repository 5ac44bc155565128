import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../../../core/errors.ts';
import { TrustDomain } from '../../../core/spiffe-id.ts';
import { compileTrustPolicy } from './compile.ts';
import { evaluatePolicy } from './evaluate.ts';

const trustDomain = TrustDomain.parse('example.org');
const base = {
  name: 'p',
  issuer: 'https://issuer.example',
  condition: 'assertion.org == "acme"',
  attribute_mapping: { subject: 'assertion.sub' },
  spiffe_id: 'spiffe://example.org/ci/{subject}',
};
const compile = (over: Record<string, unknown>) =>
  compileTrustPolicy({ ...base, ...over }, { trustDomain });
const rejects = (over: Record<string, unknown>, message: string) =>
  assert.throws(
    () => compile(over),
    (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError, String(e));
      assert.equal(e.message, message);
      return true;
    },
  );

describe('compileTrustPolicy bounds', () => {
  it('rejects an oversized expression', () => {
    rejects(
      { condition: 'true || ' + '"x" == "x" || '.repeat(300) + 'true' },
      'trust policy "p": condition: CEL expression is longer than 4096 bytes',
    );
  });
  it('rejects deep nesting', () => {
    rejects(
      { condition: '('.repeat(40) + 'true' + ')'.repeat(40) },
      'trust policy "p": condition: Exceeded maxDepth (24)',
    );
    rejects(
      { condition: Array.from({ length: 40 }, () => 'true').join(' && ') },
      'trust policy "p": condition: expression nests deeper than 32 levels',
    );
  });
  it('rejects unknown identifiers', () => {
    rejects(
      { condition: 'request.org == "acme"' },
      'trust policy "p": condition: Unknown variable: request',
    );
    rejects(
      { attribute_mapping: { subject: 'attribute.x' } },
      'trust policy "p": attribute_mapping.subject: Unknown variable: attribute',
    );
  });
  it('rejects a non-bool condition and non-string mappings', () => {
    rejects(
      { condition: 'assertion.org + "x"' },
      'trust policy "p": condition: must evaluate to bool, not string',
    );
    rejects(
      { attribute_mapping: { subject: '1 + 2' } },
      'trust policy "p": attribute_mapping.subject: must evaluate to a string, not int',
    );
    rejects(
      { attribute_mapping: { subject: 'assertion.sub', groups: '"a"' } },
      'trust policy "p": attribute_mapping.groups: must evaluate to a list of strings, not string',
    );
  });
  it('rejects syntax errors, cost multipliers and unsafe regexps', () => {
    rejects(
      { condition: 'assertion.org ==' },
      'trust policy "p": condition: Unexpected token: EOF',
    );
    rejects(
      { condition: 'assertion.l.all(x, assertion.l.exists(y, x == y))' },
      'trust policy "p": condition: nested comprehension exists() is not allowed (its cost multiplies)',
    );
    rejects(
      { condition: 'cel.bind(x, assertion.l, size(x + x) > 0)' },
      'trust policy "p": condition: cel.bind is not allowed (it can grow values exponentially)',
    );
    rejects(
      { condition: 'assertion.sub.matches("(a+)+$")' },
      'trust policy "p": condition: matches() pattern refused: a quantified group contains a quantifier or "|"',
    );
    rejects(
      { condition: 'assertion.sub.matches(assertion.re)' },
      'trust policy "p": condition: matches() needs a string literal pattern',
    );
  });
  it('rejects policy-level mistakes', () => {
    rejects(
      { attribute_mapping: { sub: 'assertion.sub' } },
      'trust policy "p": attribute_mapping: must map "subject" (e.g. "assertion.sub")',
    );
    rejects(
      { issuer: 'http://issuer.example' },
      'trust policy "p": issuer: must be an https URL without query, fragment or userinfo, or spiffe://<trust domain>',
    );
    rejects({ name: 'Bad_Name' }, 'trust policy "Bad_Name": name: must match [a-z0-9-]+');
    rejects(
      { access_token: { audience: 'a', scopes: [] } },
      'trust policy "p": exactly one of spiffe_id or access_token is required',
    );
    rejects({ ttl: '2h' }, 'trust policy "p": ttl: "2h" exceeds the maximum of 3600s');
    rejects(
      { spiffe_id: 'spiffe://other.org/ci/{subject}' },
      'trust policy "p": spiffe_id: template "spiffe://other.org/ci/{subject}": must start with "spiffe://example.org/" (the configured trust domain)',
    );
    rejects(
      { spiffe_id: 'spiffe://example.org/spire/{subject}' },
      'trust policy "p": spiffe_id: template "spiffe://example.org/spire/{subject}": the path "/spire" is reserved for servers and agents',
    );
    rejects(
      { spiffe_id: 'spiffe://example.org/ci/{repo}' },
      'trust policy "p": spiffe_id: placeholder {repo} names no attribute in attribute_mapping',
    );
    rejects(
      { spiffe_id: 'spiffe://example.org/ci/x-{subject}' },
      'trust policy "p": spiffe_id: template "spiffe://example.org/ci/x-{subject}": a placeholder must be a whole path segment, got "x-{subject}"',
    );
  });
});

describe('evaluatePolicy on hostile input', () => {
  const p = compile({});
  const claims = { iss: 'https://issuer.example', sub: 'alice', org: 'acme' };

  it('allows the benign case', () => {
    assert.equal(evaluatePolicy(p, claims).allowed, true);
  });
  it('refuses huge claims cleanly', () => {
    const d = evaluatePolicy(p, { ...claims, junk: 'x'.repeat(70_000) });
    assert.deepEqual(d, {
      allowed: false,
      policy: 'p',
      failing: 'claims',
      reason: 'claims exceed 65536 bytes',
      attributes: {},
    });
    const many = evaluatePolicy(p, { ...claims, junk: new Array(1_000_000).fill(0) });
    assert.equal(many.allowed ? '' : many.reason, 'claims have more than 4096 values');
  });
  it('refuses deep and cyclic claims cleanly', () => {
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 10_000; i++) deep = { d: deep };
    const d = evaluatePolicy(p, { ...claims, deep });
    assert.equal(d.allowed ? '' : d.reason, 'claims nest deeper than 16 levels');
    const cyclic: Record<string, unknown> = { ...claims };
    cyclic['self'] = cyclic;
    const c = evaluatePolicy(p, cyclic);
    assert.equal(c.allowed ? '' : c.reason, 'claims nest deeper than 16 levels');
  });
  it('keeps a "__proto__" claim as data', () => {
    const d = evaluatePolicy(
      p,
      JSON.parse(
        '{"iss":"https://issuer.example","sub":"a","org":"acme","__proto__":{"org":"x"}}',
      ) as Record<string, unknown>,
    );
    assert.equal(d.allowed, true);
  });
  it('turns CEL runtime errors and bad mapped values into denials', () => {
    const missing = evaluatePolicy(p, { iss: 'https://issuer.example', sub: 'alice' });
    assert.deepEqual(missing, {
      allowed: false,
      policy: 'p',
      failing: 'condition',
      reason: 'No such key: org',
      attributes: { subject: 'alice' },
    });
    const numeric = evaluatePolicy(p, { ...claims, sub: 42 });
    assert.equal(
      numeric.allowed ? '' : `${numeric.failing}: ${numeric.reason}`,
      'attribute_mapping.subject: assertion.sub: evaluated to 42, not a string',
    );
    const slash = evaluatePolicy(p, { ...claims, sub: 'a/b' });
    assert.equal(slash.allowed ? '' : slash.failing, 'spiffe_id');
    const long = evaluatePolicy(p, { ...claims, sub: 'a'.repeat(300) });
    assert.equal(long.allowed ? '' : long.reason, 'assertion.sub: longer than 256 bytes');
  });
  it('issues access tokens and groups', () => {
    const q = compile({
      spiffe_id: undefined,
      access_token: { audience: 'https://api.example', scopes: ['read', 'write'] },
      attribute_mapping: { subject: 'assertion.sub', groups: 'assertion.groups' },
      condition: '"admins" in attribute.groups && assertion.runner_id == 42',
      ttl: '5m',
    });
    const d = evaluatePolicy(q, { ...claims, groups: ['admins', 'dev'], runner_id: 42 });
    assert.deepEqual(d, {
      allowed: true,
      policy: 'p',
      attributes: { subject: 'alice', groups: ['admins', 'dev'] },
      ttlMs: 300_000,
      accessToken: { audience: 'https://api.example', scopes: ['read', 'write'] },
    });
    const bad = evaluatePolicy(q, { ...claims, groups: ['admins', 7], runner_id: 42 });
    assert.equal(bad.allowed ? '' : bad.reason, 'assertion.groups: group 7 is not a string');
  });
});
