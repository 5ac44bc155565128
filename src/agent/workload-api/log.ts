// The Workload API's logging seam: the shape of a pino logger (what the agent's composition root
// passes), so any pino-compatible logger fits. Fields never carry secrets: no keys, tokens, SVIDs.
type LogFn = (fields: Record<string, unknown>, msg: string) => void;

export interface WorkloadApiLogger {
  readonly debug: LogFn;
  readonly info: LogFn;
  readonly warn: LogFn;
  readonly error: LogFn;
}

const nothing: LogFn = () => {};
export const silentLogger: WorkloadApiLogger = {
  debug: nothing,
  info: nothing,
  warn: nothing,
  error: nothing,
};
