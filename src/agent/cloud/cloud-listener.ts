// The agent's cloud metadata listener: one loopback HTTP port serving every cloud endpoint
// (AWS IMDSv2 and container credentials, GCE metadata, Azure managed identity) by path prefix,
// so a single `tessera cloud env` line points an unmodified SDK at the agent. The caller is the
// process holding the client end of the TCP connection, pinned at accept (attestation/tcp-peer.ts)
// and attested on the endpoint's first need; header checks come first and are the endpoint's.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { InvalidArgumentError, PermissionDeniedError } from '../../core/errors.ts';
import type { AttestationService } from '../attestation/attestation-service.ts';
import type { AttestedCaller } from '../attestation/caller.ts';
import type { ConnectionPeer } from '../attestation/connection-peer.ts';
import { isLoopback } from '../attestation/proc-net-tcp.ts';
import type { CloudContext, CloudEndpoint, CloudRequest, CloudResponse } from './cloud-endpoint.ts';

/** Longest request target (path and query) accepted. */
export const MAX_URL_BYTES = 4096;
/** Largest request head; larger heads get 431 from Node. */
export const MAX_HEADER_BYTES = 8 * 1024;
/** Largest request body read (IMDSv2 token PUTs and token POSTs are tiny). */
export const MAX_BODY_BYTES = 16 * 1024;

export interface CloudListenerOptions {
  /** A loopback IP literal and a port (0: any free one). */
  readonly host: string;
  readonly port: number;
  readonly attestation: AttestationService;
  readonly endpoints: readonly CloudEndpoint[];
  readonly context: CloudContext;
  /** Connections served at once; more are closed at accept. Default 256. */
  readonly maxConnections?: number;
}

export interface CloudListener {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startCloudListener(o: CloudListenerOptions): Promise<CloudListener> {
  if (!isLoopback(o.host)) {
    throw new InvalidArgumentError(
      `cloud.listen: ${o.host} is not a loopback address (use 127.0.0.1 or [::1])`,
    );
  }
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
      serve(o, req, res, peers.get(req.socket)).catch((e: unknown) => {
        o.context.log.debug({ err: (e as Error).message }, 'cloud metadata request ended early');
      });
    },
  );
  server.maxConnections = o.maxConnections ?? 256;
  server.on('connection', (socket: Socket) => {
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
  server.on('error', (e) => o.context.log.warn({ err: e.message }, 'cloud listener error'));
  const addr = server.address() as AddressInfo;
  o.context.log.info(
    { address: `${addr.address}:${addr.port}`, endpoints: o.endpoints.map((e) => e.name) },
    'cloud metadata endpoints listening',
  );
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

async function serve(
  o: CloudListenerOptions,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  peer: Promise<ConnectionPeer> | undefined,
): Promise<void> {
  const call = new AbortController();
  const onClose = () => call.abort(new Error('the client went away'));
  res.once('close', onClose);
  try {
    const target = req.url ?? '';
    if (Buffer.byteLength(target) > MAX_URL_BYTES) {
      return send(res, text(414, `request target longer than ${MAX_URL_BYTES} bytes`));
    }
    const q = target.indexOf('?');
    let path: string;
    try {
      path = decodeURIComponent(q < 0 ? target : target.slice(0, q));
    } catch {
      return send(res, text(400, 'malformed percent-encoding in the path'));
    }
    const endpoint = o.endpoints.find((e) => e.prefixes.some((p) => path.startsWith(p)));
    if (!endpoint) return send(res, text(404, 'not found'));
    const body = await readBody(req);
    if (body === null) return send(res, text(413, `request body over ${MAX_BODY_BYTES} bytes`));
    let attested: Promise<AttestedCaller> | undefined;
    const request: CloudRequest = {
      method: req.method ?? 'GET',
      path,
      query: new URLSearchParams(q < 0 ? '' : target.slice(q + 1)),
      headers: req.headers,
      body,
      signal: call.signal,
      caller: () => (attested ??= attest(o, peer, call.signal)),
      processKey: () => processKey(peer),
    };
    send(res, await endpoint.handle(request, o.context));
  } catch (e) {
    if (call.signal.aborted) return;
    const correlationId = randomUUID();
    o.context.log.warn(
      { correlationId, err: e instanceof Error ? `${e.name}: ${e.message}` : String(e) },
      'cloud metadata request failed',
    );
    send(res, text(500, `internal error (correlation id ${correlationId})`));
  } finally {
    res.removeListener('close', onClose);
  }
}

async function attest(
  o: CloudListenerOptions,
  peer: Promise<ConnectionPeer> | undefined,
  signal: AbortSignal,
): Promise<AttestedCaller> {
  const p = await (peer ?? Promise.resolve<ConnectionPeer>({ ok: false, reason: 'no peer' }));
  if (!p.ok) throw new PermissionDeniedError(`could not attest the caller: ${p.reason}`);
  return o.attestation.attest(p, signal, { reuse: true });
}

async function processKey(peer: Promise<ConnectionPeer> | undefined): Promise<string> {
  const p = await (peer ?? Promise.resolve<ConnectionPeer>({ ok: false, reason: 'no peer' }));
  if (!p.ok) throw new PermissionDeniedError(`could not identify the caller: ${p.reason}`);
  return `${p.pin.pid}:${p.pin.startTime}`;
}

/** The body as UTF-8, or null past MAX_BODY_BYTES (the rest is not read). */
async function readBody(req: http.IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function text(status: number, message: string): CloudResponse {
  return { status, headers: { 'content-type': 'text/plain' }, body: `${message}\n` };
}

function send(res: http.ServerResponse, r: CloudResponse): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(r.status, {
    'cache-control': 'no-store',
    ...r.headers,
    'content-length': Buffer.byteLength(r.body),
  });
  res.end(r.body);
}
