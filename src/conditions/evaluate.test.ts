import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileExpression, conditionEnvironment } from './compile.ts';
import { describeValue, explainFalse, runExpression } from './evaluate.ts';
import { sanitizeInput } from './sanitize.ts';

const env = conditionEnvironment(['request']);
const c = compileExpression(env, 'request.method == "GET" && request.path == "/x"', 'condition');

describe('runExpression and explainFalse', () => {
  it('returns a runtime error as a result, never a throw', () => {
    const r = runExpression(c.expr, { request: sanitizeInput({ method: 'GET' }, 'requests') });
    assert.deepEqual(r, { ok: false, error: 'No such key: path' });
  });

  it('names the first operand that is not true', () => {
    const ctx = { request: sanitizeInput({ method: 'GET', path: '/y' }, 'requests') };
    assert.deepEqual(runExpression(c.expr, ctx), { ok: true, value: false });
    assert.deepEqual(explainFalse(c.expr, c.conjuncts, ctx), {
      operand: 'request.path == "/x"',
      reason: 'request.path == "/x" is false',
    });
    const missing = { request: sanitizeInput({ path: '/x' }, 'requests') };
    assert.deepEqual(explainFalse(c.expr, c.conjuncts, missing), {
      operand: 'request.method == "GET"',
      reason: 'No such key: method',
    });
  });

  it('falls back to the whole expression when it has no operands to blame', () => {
    const one = compileExpression(env, 'request.ok', 'condition');
    assert.deepEqual(explainFalse(one.expr, one.conjuncts, { request: { ok: false } }), {
      reason: 'request.ok is false',
    });
  });

  it('describes values briefly', () => {
    assert.equal(describeValue('x'.repeat(100)), JSON.stringify('x'.repeat(57) + '...'));
    assert.equal(describeValue(42n), '42');
    assert.equal(describeValue(undefined), 'absent');
    assert.equal(describeValue([1]), 'a list');
    assert.equal(describeValue({}), 'a map');
  });
});

describe('sanitizeInput', () => {
  it('copies JSON into CEL values: ints as BigInt, objects without a prototype', () => {
    const v = sanitizeInput(JSON.parse('{"n":42,"d":1.5,"__proto__":{"x":1}}'), 'claims');
    assert.equal(v['n'], 42n);
    assert.equal(v['d'], 1.5);
    assert.equal(Object.getPrototypeOf(v), null);
    assert.deepEqual(Object.keys(v), ['n', 'd', '__proto__']);
  });

  it('stops at the first bound it crosses, naming the input', () => {
    const refuses = (input: unknown, message: string) =>
      assert.throws(() => sanitizeInput(input, 'claims'), { name: 'InputError', message });
    refuses({ s: 'x'.repeat(70_000) }, 'claims exceed 65536 bytes');
    refuses({ l: new Array(1_000_000).fill(0) }, 'claims have more than 4096 values');
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    refuses(cyclic, 'claims nest deeper than 16 levels');
    refuses({ d: new Date(0) }, 'claims hold a value that is not JSON');
    refuses({ n: Infinity }, 'claims hold a non-finite number');
    refuses([], 'claims are not a JSON object');
    assert.throws(() => sanitizeInput(null, 'attributes'), {
      message: 'attributes are not a JSON object',
    });
  });
});
