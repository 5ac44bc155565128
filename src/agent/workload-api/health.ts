// grpc.health.v1.Health on the Workload API socket, so that generic probes (grpc_health_probe,
// Kubernetes gRPC probes) can check the agent. "" is the server as a whole.
import type { ServiceImpl } from '@connectrpc/connect';
import { NotFoundError } from '../../core/errors.ts';
import {
  HealthCheckResponse_ServingStatus as ServingStatus,
  type Health,
} from '../../../proto/gen/grpc/health/v1/health_pb.js';
import { fullStateStream } from './watch.ts';

export { ServingStatus };

export interface HealthState {
  status(service: string): ServingStatus | undefined;
  all(): ReadonlyMap<string, ServingStatus>;
  setAll(status: ServingStatus): void;
  onChange(listener: () => void): () => void;
}

export function createHealthState(services: readonly string[]): HealthState {
  const statuses = new Map<string, ServingStatus>(
    ['', ...services].map((s) => [s, ServingStatus.SERVING]),
  );
  const listeners = new Set<() => void>();
  return {
    status: (service) => statuses.get(service),
    all: () => statuses,
    setAll(status) {
      for (const k of statuses.keys()) statuses.set(k, status);
      for (const l of [...listeners]) l();
    },
    onChange(listener) {
      const wrapped = () => listener();
      listeners.add(wrapped);
      return () => listeners.delete(wrapped);
    },
  };
}

export function healthHandlers(
  state: HealthState,
  shutdown: AbortSignal,
): ServiceImpl<typeof Health> {
  return {
    check(req) {
      const status = state.status(req.service);
      if (status === undefined) throw new NotFoundError(`unknown service "${req.service}"`);
      return { status };
    },
    list() {
      const statuses: Record<string, { status: ServingStatus }> = {};
      for (const [service, status] of state.all()) statuses[service] = { status };
      return { statuses };
    },
    // The current status at once, then on every change; ends quietly at shutdown (after the
    // NOT_SERVING the server publishes first).
    async *watch(req, ctx) {
      const signal = AbortSignal.any([ctx.signal, shutdown]);
      const compute = () => state.status(req.service) ?? ServingStatus.SERVICE_UNKNOWN;
      for await (const status of fullStateStream(state, signal, compute, (a, b) => a === b)) {
        yield { status };
      }
    },
  };
}
