// The HTTP side of a bundle fetch (spec SPIFFE_Federation.md §5): a plain GET over TLS 1.2+,
// with the endpoint authenticated per profile BEFORE the request is sent:
// - https_web: WebPKI — the system roots plus the configured extra CA certificates, server name
//   checked per RFC 6125 (node's checkServerIdentity);
// - https_spiffe: the server certificate must be an X509-SVID that chains to the remote trust
//   domain's stored bundle and whose URI SAN equals the configured endpoint SPIFFE ID (no WebPKI).
// Redirects (301, 302, 303, 307, 308) are followed up to a bound and never persisted (the spec:
// "SHOULD NOT persist them, even when marked permanent"); every hop is authenticated the same way,
// so an https_spiffe redirect target must present the same SPIFFE ID. The body is bounded in
// bytes, and the whole fetch (redirects included) in time. HTTP/2 or HTTP/1.1, as ALPN decides.
import http from 'node:http';
import http2 from 'node:http2';
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import tls from 'node:tls';
import { InvalidArgumentError, UnavailableError } from '../../core/errors.ts';
import { verifyX509Svid } from '../../crypto/x509/verify.ts';

export interface EndpointAuth {
  readonly profile: 'https_web' | 'https_spiffe';
  /** https_web: PEM CA certificates trusted in addition to the system roots. */
  readonly extraCaPem?: readonly string[];
  /** https_spiffe: the SPIFFE ID the endpoint must present. */
  readonly endpointSpiffeId?: string;
  /** https_spiffe: the remote trust domain's X.509 authorities (DER). */
  readonly roots?: readonly Uint8Array[];
  /** https_spiffe: the time at which certificates are validated (epoch ms). */
  readonly now?: number;
}

export interface FetchLimits {
  /** Bound on the whole fetch, redirects included. */
  readonly timeoutMs: number;
  /** Bound on the response body. */
  readonly maxBytes: number;
  readonly maxRedirects: number;
}

export const defaultFetchLimits: FetchLimits = Object.freeze({
  timeoutMs: 10_000,
  maxBytes: 1024 * 1024,
  maxRedirects: 3,
});

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_CHAIN = 8;

export interface EndpointResponse {
  readonly body: string;
  /** The URL the body finally came from (after redirects); informational only. */
  readonly url: string;
}

/** GETs the bundle document at `url`; rejects with a message that says what went wrong. */
export async function getBundleDocument(
  url: string,
  auth: EndpointAuth,
  limits: FetchLimits = defaultFetchLimits,
): Promise<EndpointResponse> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), limits.timeoutMs);
  try {
    let current = new URL(url);
    for (let hop = 0; ; hop++) {
      const r = await once(current, auth, limits, ac.signal);
      if (r.kind === 'body') return { body: r.body, url: current.toString() };
      if (hop >= limits.maxRedirects) {
        throw new UnavailableError(
          `more than ${limits.maxRedirects} redirects (last to ${clip(r.location)})`,
        );
      }
      current = redirectTarget(current, r.location);
    }
  } catch (e) {
    if (ac.signal.aborted) {
      throw new UnavailableError(`bundle endpoint did not answer within ${limits.timeoutMs} ms`);
    }
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

function redirectTarget(from: URL, location: string): URL {
  let to: URL;
  try {
    to = new URL(location, from);
  } catch {
    throw new UnavailableError(`redirect to an invalid URL "${clip(location)}"`);
  }
  if (to.protocol !== 'https:') {
    throw new UnavailableError(`redirect to a non-https URL "${clip(to.toString())}" refused`);
  }
  if (to.username !== '' || to.password !== '') {
    throw new UnavailableError('redirect to a URL with user info refused');
  }
  to.hash = '';
  return to;
}

type Hop = { kind: 'body'; body: string } | { kind: 'redirect'; location: string };

async function once(
  url: URL,
  auth: EndpointAuth,
  limits: FetchLimits,
  signal: AbortSignal,
): Promise<Hop> {
  const socket = await connect(url, auth, signal);
  try {
    return await request(url, socket, limits, signal);
  } finally {
    socket.destroy();
  }
}

function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
}

/** A TLS connection whose peer is already authenticated for the profile. */
async function connect(url: URL, auth: EndpointAuth, signal: AbortSignal): Promise<tls.TLSSocket> {
  const host = hostOf(url);
  const port = url.port === '' ? 443 : Number(url.port);
  const common: tls.ConnectionOptions = {
    host,
    port,
    minVersion: 'TLSv1.2',
    // HTTP/2 first: Tessera's own https_spiffe endpoint (the API listener) speaks only h2.
    ALPNProtocols: ['h2', 'http/1.1'],
    ...(isIP(host) === 0 ? { servername: host } : {}),
  };
  const options: tls.ConnectionOptions =
    auth.profile === 'https_web'
      ? {
          ...common,
          ca: [...tls.rootCertificates, ...(auth.extraCaPem ?? [])],
          rejectUnauthorized: true,
        }
      : // The SVID is checked below against the remote trust domain's bundle, not WebPKI.
        { ...common, rejectUnauthorized: false };
  const socket = tls.connect(options);
  const onAbort = () => socket.destroy(new UnavailableError('aborted'));
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
  } catch (e) {
    socket.destroy();
    throw new UnavailableError(`TLS connection to ${url.host} failed: ${messageOf(e)}`, {
      cause: e,
    });
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  if (auth.profile === 'https_spiffe') {
    try {
      checkSpiffePeer(socket, auth);
    } catch (e) {
      socket.destroy();
      throw e;
    }
  }
  return socket;
}

function checkSpiffePeer(socket: tls.TLSSocket, auth: EndpointAuth): void {
  const chain = peerChain(socket);
  let id: string;
  try {
    id = verifyX509Svid(chain, auth.roots ?? [], auth.now ?? 0).spiffeId;
  } catch (e) {
    throw new UnavailableError(`endpoint certificate is not a valid X509-SVID: ${messageOf(e)}`);
  }
  if (id !== auth.endpointSpiffeId) {
    throw new InvalidArgumentError(
      `endpoint presented SPIFFE ID "${clip(id)}", expected "${clip(auth.endpointSpiffeId ?? '')}"`,
    );
  }
}

/** The certificates the peer sent, leaf first, as DER. */
function peerChain(socket: tls.TLSSocket): Uint8Array[] {
  const out: Uint8Array[] = [];
  let c: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (c && c.raw && out.length < MAX_CHAIN) {
    out.push(new Uint8Array(c.raw));
    const next: tls.DetailedPeerCertificate | undefined = c.issuerCertificate;
    // The chain ends at a self-issued certificate, which node links to itself.
    if (!next || next === c || next.raw?.equals(c.raw)) break;
    c = next;
  }
  if (out.length === 0) throw new UnavailableError('endpoint presented no certificate');
  return out;
}

/** HTTP/1.1 or HTTP/2 over the authenticated socket, whichever ALPN chose. */
function request(
  url: URL,
  socket: tls.TLSSocket,
  limits: FetchLimits,
  signal: AbortSignal,
): Promise<Hop> {
  return socket.alpnProtocol === 'h2'
    ? requestH2(url, socket, limits, signal)
    : requestH1(url, socket, limits, signal);
}

function requestH1(
  url: URL,
  socket: tls.TLSSocket,
  limits: FetchLimits,
  signal: AbortSignal,
): Promise<Hop> {
  return new Promise<Hop>((resolve, reject) => {
    const req = http.request({
      createConnection: () => socket,
      method: 'GET',
      path: `${url.pathname}${url.search}`,
      headers: { host: url.host, accept: 'application/json', connection: 'close' },
      signal,
    });
    req.on('error', (e) => reject(requestError(url, e)));
    req.on('response', (res) => {
      const location = res.headers.location;
      readResponse(res.statusCode ?? 0, location, res.headers['content-length'], res, limits, () =>
        req.destroy(),
      ).then(resolve, reject);
    });
    req.end();
  });
}

function requestH2(
  url: URL,
  socket: tls.TLSSocket,
  limits: FetchLimits,
  signal: AbortSignal,
): Promise<Hop> {
  return new Promise<Hop>((resolve, reject) => {
    const session = http2.connect(url.origin, { createConnection: () => socket });
    const fail = (e: unknown) => {
      session.destroy();
      reject(requestError(url, e));
    };
    session.on('error', fail);
    const stream = session.request(
      {
        ':method': 'GET',
        ':path': `${url.pathname}${url.search}`,
        ':authority': url.host,
        accept: 'application/json',
      },
      { endStream: true, signal },
    );
    stream.on('error', fail);
    stream.on('response', (headers) => {
      const location = headers.location;
      readResponse(
        Number(headers[':status'] ?? 0),
        typeof location === 'string' ? location : undefined,
        headers['content-length'] as string | undefined,
        stream,
        limits,
        () => stream.destroy(),
      ).then(
        (hop) => {
          session.close();
          resolve(hop);
        },
        (e: unknown) => {
          session.destroy();
          reject(e);
        },
      );
    });
  });
}

function requestError(url: URL, e: unknown): Error {
  return e instanceof UnavailableError || e instanceof InvalidArgumentError
    ? e
    : new UnavailableError(`request to ${url.host} failed: ${messageOf(e)}`, { cause: e });
}

/** The redirect target, or the body read within the size bound. */
function readResponse(
  status: number,
  location: string | undefined,
  contentLength: string | undefined,
  body: Readable,
  limits: FetchLimits,
  abort: () => void,
): Promise<Hop> {
  return new Promise<Hop>((resolve, reject) => {
    if (REDIRECTS.has(status)) {
      body.resume();
      if (!location) reject(new UnavailableError(`HTTP ${status} without a Location header`));
      else resolve({ kind: 'redirect', location });
      return;
    }
    if (status !== 200) {
      body.resume();
      reject(new UnavailableError(`bundle endpoint answered HTTP ${status}`));
      return;
    }
    const declared = Number(contentLength ?? NaN);
    if (Number.isFinite(declared) && declared > limits.maxBytes) {
      abort();
      reject(tooLarge(limits.maxBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    body.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limits.maxBytes) {
        abort();
        reject(tooLarge(limits.maxBytes));
        return;
      }
      chunks.push(chunk);
    });
    body.on('error', (e) =>
      reject(new UnavailableError(`reading the response failed: ${messageOf(e)}`)),
    );
    body.on('end', () => {
      try {
        const text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
        resolve({ kind: 'body', body: text });
      } catch {
        reject(new InvalidArgumentError('bundle endpoint response is not UTF-8'));
      }
    });
  });
}

function tooLarge(max: number): InvalidArgumentError {
  return new InvalidArgumentError(`bundle endpoint response is larger than ${max} bytes`);
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function clip(s: string): string {
  return s.length > 120 ? `${s.slice(0, 120)}…` : s;
}
