// Prometheus metrics on a registry of our own (never the global one, so tests can run several
// servers in one process).
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ServerMetrics {
  readonly registry: Registry;
  readonly rpcs: Counter<'method' | 'code'>;
  readonly rpcSeconds: Histogram<'method'>;
  readonly issued: Counter<'kind'>;
  readonly rotations: Counter<'kind' | 'event'>;
  readonly audits: Counter<'action' | 'outcome'>;
  readonly rateLimited: Counter;
  readonly apiRateLimited: Counter<'kind'>;
  readonly changeNotifications: Counter<'source'>;
}

export function createServerMetrics(): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tessera_server_' });
  return {
    registry,
    rpcs: new Counter({
      name: 'tessera_rpc_requests_total',
      help: 'API calls by method and result code',
      labelNames: ['method', 'code'],
      registers: [registry],
    }),
    rpcSeconds: new Histogram({
      name: 'tessera_rpc_duration_seconds',
      help: 'API call latency',
      labelNames: ['method'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    issued: new Counter({
      name: 'tessera_svids_issued_total',
      help: 'SVIDs issued, by kind (x509, jwt)',
      labelNames: ['kind'],
      registers: [registry],
    }),
    rotations: new Counter({
      name: 'tessera_authority_events_total',
      help: 'Authority rotation events (prepare, activate, taint, revoke, prune)',
      labelNames: ['kind', 'event'],
      registers: [registry],
    }),
    audits: new Counter({
      name: 'tessera_audit_records_total',
      help: 'Audit records written',
      labelNames: ['action', 'outcome'],
      registers: [registry],
    }),
    apiRateLimited: new Counter({
      name: 'tessera_api_rate_limited_total',
      help: 'API calls refused by the per-address attestation or signing rate limit',
      labelNames: ['kind'],
      registers: [registry],
    }),
    changeNotifications: new Counter({
      name: 'tessera_change_notifications_total',
      help: 'Commit notifications that woke the change follower: local (this server), remote (another server, LISTEN/NOTIFY), resync (listening connection re-established)',
      labelNames: ['source'],
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: 'tessera_public_rate_limited_total',
      help: 'Requests to the public token, introspection and revocation endpoints refused by the per-address rate limit',
      registers: [registry],
    }),
  };
}
