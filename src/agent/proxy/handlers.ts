// The proxy's protocol handlers, one line each (docs/injection.md). A way in hands a connection
// to the handler of its server workload's protocol; a protocol without a handler here is refused.
import type { ServerProtocol } from '../../core/access.ts';
import { createHttpHandler } from './http/http-handler.ts';
import { createMysqlHandler } from './mysql/mysql-handler.ts';
import { createPostgresHandler } from './postgres/postgres-handler.ts';
import type { ProxyProtocolHandler } from './proxy-connection.ts';
import { createRedisHandler } from './redis/redis-handler.ts';
import { tcpHandler } from './tcp/tcp-handler.ts';

export const proxyHandlers: readonly ProxyProtocolHandler[] = [
  tcpHandler,
  createHttpHandler(),
  createPostgresHandler(),
  createRedisHandler(),
  createMysqlHandler(),
];

/** The handler for `protocol`, or undefined. */
export function handlerFor(
  protocol: ServerProtocol,
  handlers: readonly ProxyProtocolHandler[] = proxyHandlers,
): ProxyProtocolHandler | undefined {
  return handlers.find((h) => h.protocols.includes(protocol));
}
