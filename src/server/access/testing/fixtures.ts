// Builders for access-decision tests and benches: policies, server workloads and requests with
// every field filled, so a test names only what it is about.
import type { AccessPolicy, AccessRequest, ServerWorkload } from '../../../core/access.ts';
import type { Selector } from '../../../core/selector.ts';

export function server(name: string): ServerWorkload {
  return {
    name,
    host: `${name}.internal`,
    port: 5432,
    protocol: 'postgres',
    pathPrefix: '',
    present: 'postgres-password',
    tls: false,
    tlsCa: '',
    tlsDecrypt: false,
    createdAt: 0,
    updatedAt: 0,
  };
}

export function allow(
  name: string,
  client: string,
  more: Partial<AccessPolicy> = {},
): AccessPolicy {
  return {
    name,
    client,
    server: 'db',
    credentialProvider: 'db-password',
    condition: '',
    effect: 'allow',
    createdAt: 0,
    updatedAt: 0,
    ...more,
  };
}

export function deny(name: string, client: string, more: Partial<AccessPolicy> = {}): AccessPolicy {
  return allow(name, client, { credentialProvider: '', effect: 'deny', ...more });
}

/** Monday 2026-12-07 10:30:00 UTC. */
export const MONDAY_MORNING = Date.UTC(2026, 11, 7, 10, 30, 0);

export interface RequestFacts {
  server?: string;
  at?: number;
  selectors?: Selector[];
  attributes?: Record<string, string>;
  request?: { method: string; path: string; host: string };
}

export function request(spiffeId: string, more: RequestFacts = {}): AccessRequest {
  return {
    client: { spiffeId, selectors: more.selectors ?? [], attributes: more.attributes ?? {} },
    server: more.server ?? 'db',
    at: more.at ?? MONDAY_MORNING,
    ...(more.request ? { request: more.request } : {}),
  };
}
