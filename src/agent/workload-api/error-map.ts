// The one place where errors become gRPC/Connect errors on the Workload API (codes through the
// table in src/wire/connect-codes.ts). TesseraError messages are written for clients (the spec's
// error texts live in them); anything else is an internal fault: logged with a correlation id,
// and the client sees only that id.
import { randomUUID } from 'node:crypto';
import { Code, ConnectError } from '@connectrpc/connect';
import type { Interceptor, StreamResponse } from '@connectrpc/connect';
import { isTesseraError } from '../../core/errors.ts';
import { connectCodeOf } from '../../wire/connect-codes.ts';
import type { WorkloadApiLogger } from './log.ts';

export function toConnectError(e: unknown, method: string, log: WorkloadApiLogger): ConnectError {
  if (e instanceof ConnectError) return e;
  if (isTesseraError(e) && e.code !== 'internal') {
    if (e.code === 'unavailable') log.warn({ method, cause: causeText(e.cause) }, e.message);
    return new ConnectError(e.message, connectCodeOf[e.code]);
  }
  const correlationId = randomUUID();
  log.error({ method, correlationId, err: causeText(e) }, 'workload API request failed');
  return new ConnectError(`internal error (correlation id ${correlationId})`, Code.Internal);
}

/** Maps errors of unary calls and of stream iteration alike (stream bodies run lazily). */
export function errorMappingInterceptor(log: WorkloadApiLogger): Interceptor {
  return (next) => async (req) => {
    const method = `/${req.service.typeName}/${req.method.name}`;
    try {
      const res = await next(req);
      if (!res.stream) return res;
      return { ...res, message: mapStream(res.message, method, log) } as StreamResponse;
    } catch (e) {
      throw toConnectError(e, method, log);
    }
  };
}

async function* mapStream<T>(
  messages: AsyncIterable<T>,
  method: string,
  log: WorkloadApiLogger,
): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (e) {
    throw toConnectError(e, method, log);
  }
}

function causeText(e: unknown): string | undefined {
  if (e === undefined) return undefined;
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
