import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileExpression, conditionEnvironment } from './compile.ts';

const env = conditionEnvironment(['request']);
const rejects = (source: string, message: string) =>
  assert.throws(() => compileExpression(env, source, 'condition'), {
    name: 'InvalidArgumentError',
    message,
  });

describe('compileExpression', () => {
  it('compiles, types and runs an expression over the declared variables', () => {
    const c = compileExpression(env, 'request.path.startsWith("/api")', 'condition');
    assert.equal(c.type, 'bool');
    assert.equal(c.expr.field, 'condition');
    assert.equal(c.expr.run({ request: { path: '/api/x' } }), true);
  });

  it('keeps the top-level && operands only when there are several', () => {
    const one = compileExpression(env, 'request.a == 1', 'condition');
    assert.deepEqual(one.conjuncts, []);
    const three = compileExpression(
      env,
      'request.a == 1 && (request.b || request.c) && request.d',
      'condition',
    );
    assert.deepEqual(
      three.conjuncts.map((c) => c.source),
      ['request.a == 1', 'request.b || request.c', 'request.d'],
    );
  });

  it('refuses size, depth, cost multipliers, unsafe regexps and unknown variables', () => {
    rejects('"' + 'x'.repeat(4100) + '"', 'condition: CEL expression is longer than 4096 bytes');
    rejects(
      Array.from({ length: 40 }, () => 'true').join(' && '),
      'condition: expression nests deeper than 32 levels',
    );
    rejects(
      'request.l.all(x, request.l.exists(y, x == y))',
      'condition: nested comprehension exists() is not allowed (its cost multiplies)',
    );
    rejects(
      'cel.bind(x, request.l, size(x + x) > 0)',
      'condition: cel.bind is not allowed (it can grow values exponentially)',
    );
    rejects(
      'request.p.matches("(a|aa)*")',
      'condition: matches() pattern refused: a quantified group contains a quantifier or "|"',
    );
    rejects('assertion.sub == "x"', 'condition: Unknown variable: assertion');
  });

  it('lets the caller name the origin of an error', () => {
    assert.throws(
      () =>
        compileExpression(
          env,
          'request ==',
          'condition',
          (f, m) => new RangeError(`p: ${f}: ${m}`),
        ),
      { name: 'RangeError', message: 'p: condition: Unexpected token: EOF' },
    );
  });
});
