// An error the proxy answers the client with, in PostgreSQL's terms: a FATAL ErrorResponse with
// this SQLSTATE and message (never holding a credential), or the upstream's own ErrorResponse
// relayed unchanged. Rendered once, in postgres-handler.ts.
export class PostgresError extends Error {
  readonly sqlstate: string;
  /** The upstream's ErrorResponse, relayed as is (it names the server's reason). */
  readonly upstreamError: Buffer | undefined;
  constructor(sqlstate: string, message: string, upstreamError?: Buffer) {
    super(message);
    this.name = 'PostgresError';
    this.sqlstate = sqlstate;
    this.upstreamError = upstreamError;
  }
}
