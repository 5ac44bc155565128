// The one place the server API turns thrown errors into Connect errors (codes through the table
// in src/wire/connect-codes.ts). Internal details never reach the client: they are logged with
// the correlation id, which the client sees.
import { Code, ConnectError } from '@connectrpc/connect';
import { isTesseraError } from '../../core/errors.ts';
import { AgentRefusedError, REFUSAL_REASON_KEY, SERVER_ANSWERED_KEY } from '../../core/refusal.ts';
import { connectCodeOf } from '../../wire/connect-codes.ts';

/** Converts any thrown value into the ConnectError the client sees. `log` receives internal ones. */
export function toConnectError(
  e: unknown,
  correlationId: string,
  log: (err: unknown) => void,
): ConnectError {
  if (e instanceof ConnectError) return e;
  // The reason code rides as metadata (a gRPC trailer, a Connect header): see core/refusal.ts.
  if (e instanceof AgentRefusedError) {
    return new ConnectError(e.message, connectCodeOf[e.code], {
      [REFUSAL_REASON_KEY]: e.reason,
      [SERVER_ANSWERED_KEY]: 'true',
    });
  }
  if (isTesseraError(e) && e.code !== 'internal') {
    if (e.code === 'unavailable') log(e);
    return new ConnectError(e.message, connectCodeOf[e.code], { [SERVER_ANSWERED_KEY]: 'true' });
  }
  log(e);
  return new ConnectError(`internal error (correlation id ${correlationId})`, Code.Internal);
}
