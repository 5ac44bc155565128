// The proxy's protocol handlers, one line each (docs/injection.md). A way in hands a connection
// to the handler of its server workload's protocol; a protocol without a handler here is refused.
import type { ServerProtocol } from '../../core/access.ts';
import type { ProxyProtocolHandler } from './proxy-connection.ts';
import { tcpHandler } from './tcp/tcp-handler.ts';

export const proxyHandlers: readonly ProxyProtocolHandler[] = [tcpHandler];

/** The handler for `protocol`, or undefined. */
export function handlerFor(
  protocol: ServerProtocol,
  handlers: readonly ProxyProtocolHandler[] = proxyHandlers,
): ProxyProtocolHandler | undefined {
  return handlers.find((h) => h.protocols.includes(protocol));
}
