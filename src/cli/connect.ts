// Clients for the admin socket. The socket path comes from --socket, then TESSERA_ADMIN_SOCKET,
// then <default server data dir>/admin.sock — the same default `tessera server run` listens on,
// wherever either command runs.
import path from 'node:path';
import type { DescService } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { adminSocketTransport } from '../client/server-transport.ts';
import { serverDataDirDefault } from './paths.ts';

export type Env = Record<string, string | undefined>;

export function defaultSocketPath(env: Env): string {
  return env.TESSERA_ADMIN_SOCKET || path.join(serverDataDirDefault(env), 'admin.sock');
}

/** Creates typed clients bound to one admin socket. */
export function adminClientFactory(
  socketPath: string,
): <S extends DescService>(service: S) => Client<S> {
  const transport = adminSocketTransport(socketPath, { httpVersion: '1.1' });
  return (service) => createClient(service, transport);
}

/** Rewrites transport failures into something an operator can act on. */
export function explainConnectError(e: unknown, socketPath: string): unknown {
  if (!(e instanceof ConnectError)) return e;
  // connect-node reports a failed socket connect as "internal" with the errno in the message.
  const m = /^connect (ENOENT|ECONNREFUSED|EACCES)\b/.exec(e.rawMessage);
  if (!m) return e;
  const why =
    m[1] === 'EACCES'
      ? 'permission denied'
      : m[1] === 'ENOENT'
        ? 'no such socket'
        : 'connection refused';
  const code = m[1] === 'EACCES' ? Code.PermissionDenied : Code.Unavailable;
  return new ConnectError(
    `cannot reach the server at admin socket ${socketPath} (${why}); is the server running? (use --socket or TESSERA_ADMIN_SOCKET)`,
    code,
  );
}
