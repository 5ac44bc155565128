// A loopback HTTP door of the agent: the scaffolding the credential API's HTTP door
// (credentials/http-door.ts) and the cloud metadata listener (cloud/cloud-listener.ts) share.
// It listens on a loopback IP literal only (anything else is refused before binding), bounds the
// request head, the time to send it and the connections served at once, and identifies the
// caller at accept: the process holding the client end of the TCP connection now is the one
// pinned (attestation/tcp-peer.ts says why a later holder is refused), released when the
// connection closes. Each request gets a signal that aborts when its client goes away.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { AttestationService } from '../attestation/attestation-service.ts';
import type { ConnectionPeer } from '../attestation/connection-peer.ts';
import { isLoopback } from '../attestation/proc-net-tcp.ts';
import { InvalidArgumentError } from '../../core/errors.ts';

/** Largest request head (Node's maxHeaderSize); larger heads get 431. */
export const MAX_HEADER_BYTES = 8 * 1024;
const DEFAULT_MAX_CONNECTIONS = 256;

/** What a door's handler gets besides the request: who is calling, and when to give up. */
export interface DoorCall {
  /** The TCP peer identified at accept (`ok: false` with the reason when it could not be). */
  readonly peer: Promise<ConnectionPeer>;
  /** Aborts when the client goes away. */
  readonly signal: AbortSignal;
}

export interface LoopbackHttpOptions {
  /** A loopback IP literal (127.0.0.0/8 or ::1) and a port (0: any free one). */
  readonly host: string;
  readonly port: number;
  /** The setting that names the address, for the refusal of a non-loopback one. */
  readonly setting: string;
  /** What the door is called in its log lines ("credential HTTP", "cloud metadata"). */
  readonly name: string;
  readonly attestation: Pick<AttestationService, 'identifyTcp' | 'release'>;
  readonly log: {
    debug(fields: Record<string, unknown>, msg: string): void;
    warn(fields: Record<string, unknown>, msg: string): void;
  };
  /** Connections served at once; more are closed at accept. Default 256. */
  readonly maxConnections?: number;
  /** Answers one request; what it throws is logged at debug (the request ended early). */
  handle(req: http.IncomingMessage, res: http.ServerResponse, call: DoorCall): Promise<void>;
}

export interface LoopbackHttp {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Refuses an address that is not a loopback IP literal, naming the setting that gave it. */
export function assertLoopback(host: string, setting: string): void {
  if (!isLoopback(host)) {
    throw new InvalidArgumentError(
      `${setting}: ${host} is not a loopback address (use 127.0.0.1 or [::1])`,
    );
  }
}

/** Starts listening; refuses a non-loopback address before binding anything. */
export async function listenLoopbackHttp(o: LoopbackHttpOptions): Promise<LoopbackHttp> {
  assertLoopback(o.host, o.setting);
  const peers = new WeakMap<Socket, Promise<ConnectionPeer>>();
  const sockets = new Set<Socket>();
  const server = http.createServer(
    {
      maxHeaderSize: MAX_HEADER_BYTES,
      headersTimeout: 10_000,
      requestTimeout: 60_000,
      keepAliveTimeout: 5000,
    },
    (req, res) => {
      const peer = peers.get(req.socket) ?? Promise.resolve({ ok: false, reason: 'no peer' });
      const call = new AbortController();
      const onClose = () => call.abort(new Error('the client went away'));
      res.once('close', onClose);
      o.handle(req, res, { peer, signal: call.signal })
        .catch((e: unknown) => {
          o.log.debug({ err: (e as Error).message }, `${o.name} request ended early`);
        })
        .finally(() => res.removeListener('close', onClose));
    },
  );
  server.maxConnections = o.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  server.on('connection', (socket: Socket) => {
    // Identified at accept, before the first byte is read.
    const peer = o.attestation.identifyTcp(socket);
    peers.set(socket, peer);
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      void peer.then((p) => o.attestation.release(p));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: o.host, port: o.port }, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  server.on('error', (e) => o.log.warn({ err: e.message }, `${o.name} listener error`));
  const addr = server.address() as AddressInfo;
  return {
    host: addr.address,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** The body as UTF-8, or null past `maxBytes` (the rest is not read). */
export async function readBoundedBody(
  req: http.IncomingMessage,
  maxBytes: number,
): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
