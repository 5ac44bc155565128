// The one table from errors to process exit codes. Tessera error codes (src/core/errors.ts) are
// the contract; Connect codes from the server are first translated to them
// (src/wire/connect-codes.ts), so a given failure exits the same way whether it was detected
// locally or by the server.
import { ConnectError } from '@connectrpc/connect';
import { CommanderError } from 'commander';
import { type ErrorCode, isTesseraError } from '../core/errors.ts';
import { errorCodeFromTransport } from '../wire/connect-codes.ts';

/** CLI-only outcomes that have no Tessera error code. */
export type CliOutcome = 'usage' | 'integrity';

export const exitCodes: Readonly<Record<ErrorCode | CliOutcome, number>> = {
  internal: 1,
  unimplemented: 1,
  invalid_argument: 2,
  usage: 2,
  not_found: 3,
  already_exists: 4,
  permission_denied: 5,
  unauthenticated: 5,
  unavailable: 6,
  resource_exhausted: 6,
  failed_precondition: 7,
  integrity: 8,
};

/** A deliberate non-zero exit with a message (e.g. a broken audit chain), not a failure. */
export class CliExit extends Error {
  readonly outcome: ErrorCode | CliOutcome;
  constructor(outcome: ErrorCode | CliOutcome, message: string) {
    super(message);
    this.name = 'CliExit';
    this.outcome = outcome;
  }
}

export function outcomeOf(e: unknown): ErrorCode | CliOutcome {
  if (e instanceof CliExit) return e.outcome;
  if (e instanceof CommanderError) return 'usage';
  if (isTesseraError(e)) return e.code;
  if (e instanceof ConnectError) return errorCodeFromTransport(e.code) ?? 'internal';
  return 'internal';
}

export function exitCodeOf(e: unknown): number {
  return exitCodes[outcomeOf(e)];
}
