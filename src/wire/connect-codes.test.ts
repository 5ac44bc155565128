import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Code } from '@connectrpc/connect';
import { errorCodes } from '../core/errors.ts';
import { connectCodeOf, errorCodeFromConnect, errorCodeFromTransport } from './connect-codes.ts';

it('gives every Tessera code its own Connect code and reads it back', () => {
  const sent = errorCodes.map((c) => connectCodeOf[c]);
  assert.equal(new Set(sent).size, errorCodes.length);
  for (const c of errorCodes) {
    assert.equal(errorCodeFromConnect(connectCodeOf[c]), c, c);
    assert.equal(errorCodeFromTransport(connectCodeOf[c]), c, c);
  }
});

it('folds transport-only codes into Tessera codes on the reading side only', () => {
  assert.equal(errorCodeFromTransport(Code.DeadlineExceeded), 'unavailable');
  assert.equal(errorCodeFromTransport(Code.OutOfRange), 'invalid_argument');
  assert.equal(errorCodeFromTransport(Code.Aborted), 'failed_precondition');
  assert.equal(errorCodeFromConnect(Code.DeadlineExceeded), undefined);
  for (const c of [Code.Canceled, Code.Unknown, Code.DataLoss]) {
    assert.equal(errorCodeFromConnect(c), undefined, Code[c]);
    assert.equal(errorCodeFromTransport(c), undefined, Code[c]);
  }
});
