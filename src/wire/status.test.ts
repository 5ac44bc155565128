import assert from 'node:assert/strict';
import { it } from 'node:test';
import { errorCodeFromStatus, statusToWire } from './status.ts';

it('sends success as an empty code and a failure with its code and message', () => {
  assert.deepEqual(statusToWire({ ok: true }), { code: '', message: '' });
  assert.deepEqual(statusToWire({ ok: false, code: 'not_found', message: 'no entry' }), {
    code: 'not_found',
    message: 'no entry',
  });
});

it('reads batch status codes back as Tessera codes, unknown ones as internal', () => {
  assert.equal(errorCodeFromStatus('already_exists'), 'already_exists');
  assert.equal(errorCodeFromStatus('usage'), 'internal');
  assert.equal(errorCodeFromStatus('weird'), 'internal');
});
