// mTLS with SPIFFE authentication for node:tls. Peers are verified the SPIFFE way, not the web-PKI
// way: no hostname check; the peer chain must pass verifyX509Svid against the bundle of the
// peer's own trust domain (ours or a federated one), then the authorizer. OpenSSL's verification
// is switched off (rejectUnauthorized: false) and replaced by a check that runs first on
// 'secureConnection' (servers) and 'secureConnect' (clients), destroying the socket before any
// application data is read or written. Certificates follow rotation: servers swap their secure
// context on each update; clients build their options from the source for every connection.
import tls, { type DetailedPeerCertificate, type SecureContext, type TLSSocket } from 'node:tls';
import { UnauthenticatedError } from '../../core/errors.ts';
import type { SpiffeId } from '../../core/spiffe-id.ts';
import { MAX_CHAIN_LENGTH, verifyX509Svid } from '../../crypto/x509/verify.ts';
import { derToPem } from '../../crypto/x509/pem.ts';
import type { Authorizer } from './authorizer.ts';
import type { X509BundleSource, X509Svid, X509SvidSource } from './types.ts';

/** What the TLS helpers need: our SVID, the bundles, and (optionally) rotation events. */
export interface MtlsSource extends X509SvidSource, X509BundleSource {
  onUpdate?(listener: () => void): () => void;
}

export interface MtlsOptions {
  /** Epoch ms for certificate validity checks (default Date.now). */
  readonly clock?: () => number;
  /** Told about every refused peer (for logs and metrics). */
  readonly onReject?: (error: Error, socket: TLSSocket) => void;
}

interface PeerSocket {
  getPeerCertificate(detailed: true): DetailedPeerCertificate;
}

// Authorized peers by socket (or HTTP/2 session), set when the check passes.
const peers = new WeakMap<object, SpiffeId>();
const contexts = new WeakMap<
  X509Svid,
  { options: tls.SecureContextOptions; context: SecureContext }
>();

/** The peer's chain as it sent it (leaf first), from getPeerCertificate(true). */
export function peerChainDer(sock: PeerSocket): Uint8Array[] {
  const out: Uint8Array[] = [];
  let c: DetailedPeerCertificate | undefined = sock.getPeerCertificate(true);
  for (let i = 0; c?.raw && i <= MAX_CHAIN_LENGTH; i++) {
    out.push(new Uint8Array(c.raw));
    const next: DetailedPeerCertificate | undefined = c.issuerCertificate;
    if (!next || next === c || (next.raw && next.raw.equals(c.raw))) break;
    c = next;
  }
  return out;
}

/** Verifies a peer chain against the bundle of its trust domain, then authorizes it. */
export function verifyPeer(
  chainDer: readonly Uint8Array[],
  bundles: X509BundleSource,
  authorizer: Authorizer,
  now: number,
): SpiffeId {
  if (chainDer.length === 0) throw new UnauthenticatedError('the peer presented no certificate');
  let id: SpiffeId;
  try {
    id = verifyX509Svid(chainDer, (td) => bundles.getX509BundleForTrustDomain(td), now).id;
  } catch (e) {
    throw new UnauthenticatedError(`peer X509-SVID rejected: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const refused = authorizer(id, chainDer);
  if (refused) throw refused;
  return id;
}

/** Checks a TLS socket's peer once; remembers the authorized ID. Throws when refused. */
export function verifyTlsPeer(
  sock: PeerSocket & object,
  bundles: X509BundleSource,
  authorizer: Authorizer,
  now: number,
  key: object = sock,
): SpiffeId {
  const known = peers.get(key);
  if (known) return known;
  const id = verifyPeer(peerChainDer(sock), bundles, authorizer, now);
  peers.set(key, id);
  return id;
}

/** The SPIFFE ID of a peer that passed the check on this socket (or HTTP/2 session). */
export function peerSpiffeId(socketOrSession: object): SpiffeId | undefined {
  return peers.get(socketOrSession);
}

/** key/cert (PEM) and a secure context for an SVID, built once per SVID. */
export function secureContextFor(svid: X509Svid): {
  options: tls.SecureContextOptions;
  context: SecureContext;
} {
  let c = contexts.get(svid);
  if (!c) {
    const options = {
      key: svid.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      cert: svid.chainDer.map((d) => derToPem(d)).join(''),
      minVersion: 'TLSv1.2' as const,
    };
    c = { options, context: tls.createSecureContext(options) };
    contexts.set(svid, c);
  }
  return c;
}

/**
 * Server options: our current SVID, a client certificate requested (and checked by
 * guardServer, not by OpenSSL), and an SNICallback that always answers with the current SVID.
 */
export function tlsServerOptions(source: MtlsSource): tls.TlsOptions {
  return {
    ...secureContextFor(source.getX509Svid()).options,
    requestCert: true,
    rejectUnauthorized: false,
    SNICallback: (_name, cb) => {
      try {
        cb(null, secureContextFor(source.getX509Svid()).context);
      } catch (e) {
        cb(e as Error);
      }
    },
  };
}

/**
 * Makes a tls.Server or https.Server authenticate clients by SPIFFE ID and follow rotation
 * (for an HTTP/2 server use guardHttp2Server: node's HTTP/2 cannot take a destroyed socket). The check is prepended, so it runs before every other 'secureConnection'
 * listener. Returns a function that stops following rotation.
 */
export function guardServer(
  server: tls.Server,
  source: MtlsSource,
  authorizer: Authorizer,
  o: MtlsOptions = {},
): () => void {
  const clock = o.clock ?? Date.now;
  server.prependListener('secureConnection', (sock: TLSSocket) => {
    try {
      verifyTlsPeer(sock, source, authorizer, clock());
    } catch (e) {
      sock.destroy();
      o.onReject?.(e as Error, sock);
    }
  });
  return followRotation(server, source);
}

/** Swaps the server's certificate on every source update; returns an unsubscribe. */
export function followRotation(server: tls.Server, source: MtlsSource): () => void {
  const swap = (): void => {
    try {
      server.setSecureContext(secureContextFor(source.getX509Svid()).options);
    } catch {
      // No SVID at the moment: keep serving the previous one.
    }
  };
  return source.onUpdate?.(swap) ?? (() => {});
}

/** A tls.Server that accepts only authorized SPIFFE peers and follows rotation. */
export function createMtlsServer(
  source: MtlsSource,
  authorizer: Authorizer,
  listener?: (socket: TLSSocket) => void,
  o: MtlsOptions & { tls?: tls.TlsOptions } = {},
): tls.Server {
  const server = tls.createServer({ ...o.tls, ...tlsServerOptions(source) });
  const stop = guardServer(server, source, authorizer, o);
  server.on('close', stop);
  if (listener)
    server.on('secureConnection', (s: TLSSocket) => (s.destroyed ? undefined : listener(s)));
  return server;
}

/**
 * Client options from the source's current SVID (call it per connection). OpenSSL's checks are
 * off: pass the socket to guardClientSocket right away (connectMtls does both).
 */
export function tlsClientOptions(source: MtlsSource): tls.ConnectionOptions {
  return {
    secureContext: secureContextFor(source.getX509Svid()).context,
    rejectUnauthorized: false,
    checkServerIdentity: () => undefined,
  };
}

/** Installs the SPIFFE check as the first 'secureConnect' listener; refusal destroys the socket. */
export function guardClientSocket(
  sock: TLSSocket,
  bundles: X509BundleSource,
  authorizer: Authorizer,
  o: MtlsOptions = {},
): TLSSocket {
  const clock = o.clock ?? Date.now;
  sock.prependOnceListener('secureConnect', () => {
    try {
      verifyTlsPeer(sock, bundles, authorizer, clock());
    } catch (e) {
      o.onReject?.(e as Error, sock);
      sock.destroy(e as Error);
    }
  });
  return sock;
}

/** Connects and resolves once the server is verified and authorized (rejects otherwise). */
export function connectMtls(
  source: MtlsSource,
  authorizer: Authorizer,
  options: tls.ConnectionOptions,
  o: MtlsOptions = {},
): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ ...options, ...tlsClientOptions(source) });
    guardClientSocket(sock, source, authorizer, o);
    const onError = (e: Error): void => reject(e);
    const onClose = (): void =>
      reject(new UnauthenticatedError('the connection closed during the handshake'));
    sock.once('error', onError);
    sock.once('close', onClose);
    sock.once('secureConnect', () => {
      if (sock.destroyed) return;
      sock.removeListener('error', onError);
      sock.removeListener('close', onClose);
      resolve(sock);
    });
  });
}
