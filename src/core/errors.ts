// Errors with stable codes. The code is the contract: it is mapped to HTTP status, gRPC/Connect
// code and CLI exit code in one table each (src/wire/connect-codes.ts, both directions, and
// src/cli/exit-codes.ts). Messages are for humans and must never carry secrets.

export const errorCodes = [
  'invalid_argument',
  'not_found',
  'already_exists',
  'permission_denied',
  'unauthenticated',
  'failed_precondition',
  'resource_exhausted',
  'unavailable',
  'unimplemented',
  'internal',
] as const;

export type ErrorCode = (typeof errorCodes)[number];

export class TesseraError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'TesseraError';
  }
}

export class InvalidArgumentError extends TesseraError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid_argument', message, options);
    this.name = 'InvalidArgumentError';
  }
}

export class NotFoundError extends TesseraError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('not_found', message, options);
    this.name = 'NotFoundError';
  }
}

export class AlreadyExistsError extends TesseraError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('already_exists', message, options);
    this.name = 'AlreadyExistsError';
  }
}

export class PermissionDeniedError extends TesseraError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('permission_denied', message, options);
    this.name = 'PermissionDeniedError';
  }
}

export class UnauthenticatedError extends TesseraError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('unauthenticated', message, options);
    this.name = 'UnauthenticatedError';
  }
}

export class FailedPreconditionError extends TesseraError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('failed_precondition', message, options);
    this.name = 'FailedPreconditionError';
  }
}

export class UnavailableError extends TesseraError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('unavailable', message, options);
    this.name = 'UnavailableError';
  }
}

export class ResourceExhaustedError extends TesseraError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('resource_exhausted', message, options);
    this.name = 'ResourceExhaustedError';
  }
}

export function isTesseraError(e: unknown): e is TesseraError {
  return e instanceof TesseraError;
}

/**
 * A write lost a race it can retry: the record changed since it was read (a concurrent writer,
 * a key rotation). Reported as failed_precondition when retries run out.
 */
export class ConflictError extends FailedPreconditionError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConflictError';
  }
}
