import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Code, ConnectError } from '@connectrpc/connect';
import { CommanderError } from 'commander';
import { errorCodes, TesseraError } from '../core/errors.ts';
import { CliExit, exitCodeOf, exitCodes } from './exit-codes.ts';

test('every Tessera error code has an exit code', () => {
  for (const c of errorCodes) assert.equal(typeof exitCodes[c], 'number', c);
});

test('Connect codes map through the Tessera codes', () => {
  const cases: Array<[Code, number]> = [
    [Code.InvalidArgument, 2],
    [Code.NotFound, 3],
    [Code.AlreadyExists, 4],
    [Code.PermissionDenied, 5],
    [Code.Unauthenticated, 5],
    [Code.Unavailable, 6],
    [Code.FailedPrecondition, 7],
    [Code.Internal, 1],
    [Code.Unknown, 1],
  ];
  for (const [code, exit] of cases)
    assert.equal(exitCodeOf(new ConnectError('x', code)), exit, Code[code]);
});

test('local errors, usage errors and deliberate exits', () => {
  assert.equal(exitCodeOf(new TesseraError('already_exists', 'x')), 4);
  assert.equal(exitCodeOf(new CommanderError(1, 'commander.unknownOption', 'x')), 2);
  assert.equal(exitCodeOf(new CliExit('integrity', 'x')), 8);
  assert.equal(exitCodeOf(new Error('boom')), 1);
});
