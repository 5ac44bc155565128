// Transports to the Tessera server API: the local admin socket (HTTP/2 cleartext over a Unix
// socket) and the mTLS API listener (the server is authenticated by its SPIFFE ID against the
// trust bundle, never by hostname).
import net from 'node:net';
import type { PeerCertificate } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { Interceptor, Transport } from '@connectrpc/connect';
import { Http2SessionManager, createConnectTransport } from '@connectrpc/connect-node';

/**
 * The admin socket serves Connect over HTTP/2 and HTTP/1.1. The CLI asks for HTTP/1.1: a process
 * that makes one call starts ~25–40 ms of CPU sooner without loading `node:http2` (and with it
 * `tls` and `crypto`). Long-lived callers keep HTTP/2's one multiplexed connection.
 */
export function adminSocketTransport(
  socketPath: string,
  o: { httpVersion?: '1.1' | '2' } = {},
): Transport {
  return createConnectTransport({
    ...(o.httpVersion === '1.1'
      ? { httpVersion: '1.1', nodeOptions: { socketPath } }
      : { httpVersion: '2', nodeOptions: { createConnection: () => net.connect(socketPath) } }),
    baseUrl: 'http://localhost',
    // Uncompressed: on a local socket bytes are free and zlib is not (Connect offers gzip and
    // brotli by default; the CLI's `entry list` spent ~20 ms of its CPU decompressing 100
    // entries, and the server as much compressing them).
    acceptCompression: [],
  });
}

export interface MtlsOptions {
  /** host:port of the API listener. */
  address: string;
  /** Trust bundle CA certificates (PEM) to verify the server with. */
  trustBundlePem: string;
  /** The SPIFFE ID the server must present, e.g. spiffe://td/spire/server. */
  serverId: string;
  /** Client SVID (omit for anonymous calls such as node attestation). */
  clientCertPem?: string;
  clientKeyPem?: string;
  /**
   * Skip verifying the server (an agent's first contact with --insecure-bootstrap). The server is
   * then trusted on first use; its bundle is verified on every later connection.
   */
  insecure?: boolean;
  /**
   * Offer gzip/brotli for responses (Connect's default). Off for the agent: on its link to the
   * server CPU is dearer than bytes, and SVIDs and tokens (keys, signatures) barely compress.
   */
  compression?: boolean;
  /** Wrap every call (the agent watches outcomes to learn when the server answers again). */
  interceptors?: Interceptor[];
}

export function mtlsTransport(o: MtlsOptions): Transport {
  return mtlsConnection(o).transport;
}

/** A transport plus `close()`, for long-lived callers that must not leave a session open. */
export function mtlsConnection(o: MtlsOptions): { transport: Transport; close(): void } {
  const sessions = new Http2SessionManager(`https://${o.address}`, undefined, {
    ca: o.trustBundlePem,
    ...(o.clientCertPem ? { cert: o.clientCertPem } : {}),
    ...(o.clientKeyPem ? { key: o.clientKeyPem } : {}),
    rejectUnauthorized: o.insecure !== true,
    checkServerIdentity: (_host: string, cert: PeerCertificate) =>
      o.insecure === true ? undefined : checkSpiffeId(cert, o.serverId),
  });
  const transport = createConnectTransport({
    httpVersion: '2',
    baseUrl: `https://${o.address}`,
    sessionManager: sessions,
    ...(o.compression === false ? { acceptCompression: [] } : {}),
    ...(o.interceptors ? { interceptors: o.interceptors } : {}),
  });
  return { transport, close: () => sessions.abort() };
}

/** Accepts the peer only when its certificate's single URI SAN is exactly `expected`. */
export function checkSpiffeId(cert: PeerCertificate, expected: string): Error | undefined {
  const san = cert.raw
    ? (new X509Certificate(cert.raw).subjectAltName ?? '')
    : (cert.subjectaltname ?? '');
  const uris = san
    .split(', ')
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
  if (uris.length !== 1 || uris[0] !== expected) {
    return new Error(`server presented ${uris.join(', ') || 'no SPIFFE ID'}, expected ${expected}`);
  }
  return undefined;
}
