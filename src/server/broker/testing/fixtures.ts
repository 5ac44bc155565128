// Test support for the broker's tests (broker/broker.test.ts, compose/broker.test.ts): the server
// workload they release credentials for and the client entry they release them to.
import type { ServerWorkload } from '../../../core/access.ts';
import type { Entry } from '../../../core/entry.ts';
import { entryOf } from '../../../core/testing/entry.ts';

/** A PostgreSQL database that is given a password, created at `now`. */
export function ordersDb(now: number): ServerWorkload {
  return {
    name: 'orders-db',
    host: 'db.internal',
    port: 5432,
    protocol: 'postgres',
    pathPrefix: '',
    present: 'postgres-password',
    tls: false,
    tlsCa: '',
    tlsDecrypt: false,
    createdAt: now,
    updatedAt: now,
  };
}

/** A client workload under `agent`, attested as unix uid 1000, created at `now`. */
export function clientEntry(id: string, spiffeId: string, agent: string, now: number): Entry {
  return entryOf({
    id,
    spiffeId,
    parentId: agent,
    selectors: [{ type: 'unix', value: 'uid:1000' }],
    createdAt: now,
  });
}
