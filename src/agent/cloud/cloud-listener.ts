// The agent's cloud metadata listener: one loopback HTTP port serving every cloud endpoint
// (AWS IMDSv2 and container credentials, GCE metadata, Azure managed identity) by path prefix,
// so a single `tessera cloud env` line points an unmodified SDK at the agent. The caller is the
// process holding the client end of the TCP connection, pinned at accept (doors/loopback-http.ts)
// and attested on the endpoint's first need; header checks come first and are the endpoint's.
import type http from 'node:http';
import { randomUUID } from 'node:crypto';
import { PermissionDeniedError } from '../../core/errors.ts';
import type { AttestationService } from '../attestation/attestation-service.ts';
import type { AttestedCaller } from '../attestation/caller.ts';
import type { ConnectionPeer } from '../attestation/connection-peer.ts';
import {
  assertLoopback,
  type DoorCall,
  listenLoopbackHttp,
  readBoundedBody,
} from '../doors/loopback-http.ts';
import type { CloudContext, CloudEndpoint, CloudRequest, CloudResponse } from './cloud-endpoint.ts';

/** Longest request target (path and query) accepted. */
export const MAX_URL_BYTES = 4096;
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
  // Refused before anything else of the options is used.
  assertLoopback(o.host, 'cloud.listen');
  const door = await listenLoopbackHttp({
    host: o.host,
    port: o.port,
    setting: 'cloud.listen',
    name: 'cloud metadata',
    attestation: o.attestation,
    log: o.context.log,
    ...(o.maxConnections !== undefined ? { maxConnections: o.maxConnections } : {}),
    handle: (req, res, call) => serve(o, req, res, call),
  });
  o.context.log.info(
    { address: `${door.host}:${door.port}`, endpoints: o.endpoints.map((e) => e.name) },
    'cloud metadata endpoints listening',
  );
  return door;
}

async function serve(
  o: CloudListenerOptions,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  { peer, signal }: DoorCall,
): Promise<void> {
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
    const body = await readBoundedBody(req, MAX_BODY_BYTES);
    if (body === null) return send(res, text(413, `request body over ${MAX_BODY_BYTES} bytes`));
    let attested: Promise<AttestedCaller> | undefined;
    const request: CloudRequest = {
      method: req.method ?? 'GET',
      path,
      query: new URLSearchParams(q < 0 ? '' : target.slice(q + 1)),
      headers: req.headers,
      body,
      signal,
      caller: () => (attested ??= attest(o, peer, signal)),
      processKey: () => processKey(peer),
    };
    send(res, await endpoint.handle(request, o.context));
  } catch (e) {
    if (signal.aborted) return;
    const correlationId = randomUUID();
    o.context.log.warn(
      { correlationId, err: e instanceof Error ? `${e.name}: ${e.message}` : String(e) },
      'cloud metadata request failed',
    );
    send(res, text(500, `internal error (correlation id ${correlationId})`));
  }
}

async function attest(
  o: CloudListenerOptions,
  peer: Promise<ConnectionPeer>,
  signal: AbortSignal,
): Promise<AttestedCaller> {
  const p = await peer;
  if (!p.ok) throw new PermissionDeniedError(`could not attest the caller: ${p.reason}`);
  return o.attestation.attest(p, signal, { reuse: true });
}

async function processKey(peer: Promise<ConnectionPeer>): Promise<string> {
  const p = await peer;
  if (!p.ok) throw new PermissionDeniedError(`could not identify the caller: ${p.reason}`);
  return `${p.pin.pid}:${p.pin.startTime}`;
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
