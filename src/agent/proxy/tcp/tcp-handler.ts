// The `tcp` protocol: nothing to inject, so the proxy decides and relays. The decision still
// happens per connection (credential(): attested caller, access policy, cache or broker): a
// caller the policies do not allow is disconnected before a byte reaches the server workload.
import type { Duplex } from 'node:stream';
import { isTesseraError } from '../../../core/errors.ts';
import type { ProxyConnection, ProxyProtocolHandler } from '../proxy-connection.ts';
import { relay } from '../relay.ts';

export const tcpHandler: ProxyProtocolHandler = {
  protocols: ['tcp'],
  async handle(client: Duplex & { destroy(): void }, conn: ProxyConnection): Promise<void> {
    try {
      await conn.credential();
    } catch (e) {
      conn.log.info(
        { code: isTesseraError(e) ? e.code : 'internal', reason: (e as Error).message },
        'tcp connection refused',
      );
      client.destroy();
      return;
    }
    let upstream;
    try {
      upstream = await conn.connectUpstream();
    } catch (e) {
      conn.log.warn({ reason: (e as Error).message }, 'tcp upstream unreachable');
      client.destroy();
      return;
    }
    await relay(client, upstream, conn.signal);
  },
};
