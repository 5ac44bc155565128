// Test support (imported only by *.test.ts): a foreign trust domain with its CA, and a local
// HTTPS bundle endpoint on 127.0.0.1 whose certificate is an X509-SVID of that trust domain
// carrying the DNS name "localhost" too, so it serves both profiles.
import { generateKeyPairSync } from 'node:crypto';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Bundle } from '../../../core/bundle.ts';
import { bundleToSpiffeJson } from '../../../crypto/bundle-format.ts';
import { issueX509Svid } from '../../../crypto/x509/leaf.ts';
import { derToPem } from '../../../crypto/x509/pem.ts';
import { makeCa, type TestCa } from '../../../crypto/x509/testing/ca.ts';

export const HOUR_MS = 3_600_000;

export interface ForeignDomain {
  readonly trustDomain: string;
  readonly ca: TestCa;
  readonly caPem: string;
  /** A bundle holding just the CA, with the given sequence and refresh hint. */
  bundle(sequence: number, refreshHint?: number): Bundle;
}

export async function foreignDomain(trustDomain: string, now: number): Promise<ForeignDomain> {
  const ca = await makeCa('ec-p256', trustDomain, now);
  return {
    trustDomain,
    ca,
    caPem: derToPem(ca.certDer),
    bundle: (sequence, refreshHint = 300) => ({
      trustDomain,
      x509Authorities: [{ der: ca.certDer, tainted: false }],
      jwtAuthorities: [],
      sequence,
      refreshHint,
    }),
  };
}

export function bundleJson(b: Bundle): string {
  return JSON.stringify(bundleToSpiffeJson(b));
}

/** The part of the HTTP/1.1 and HTTP/2 compatibility response the routes use. */
export interface RouteResponse {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  write(chunk: string): unknown;
  end(chunk: string): unknown;
}

export type Route = (req: { url?: string | undefined }, res: RouteResponse) => void;

export interface TestEndpoint {
  readonly port: number;
  /** https://localhost:<port><path> */
  url(path: string): string;
  /** Requests received, by path. */
  readonly hits: string[];
  routes: Map<string, Route>;
  close(): Promise<void>;
}

/**
 * An HTTPS server presenting an X509-SVID `spiffeId` (DNS SAN localhost) issued by `domain`;
 * HTTP/1.1, or HTTP/2 only (like Tessera's API listener) with `h2Only`.
 */
export async function startEndpoint(
  domain: ForeignDomain,
  spiffeId: string,
  now: number,
  opts: { h2Only?: boolean } = {},
): Promise<TestEndpoint> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const leaf = await issueX509Svid({
    ca: { certDer: domain.ca.certDer, key: domain.ca.key },
    subjectPublicKey: publicKey,
    spiffeId,
    dnsNames: ['localhost'],
    notBefore: now - HOUR_MS,
    notAfter: now + HOUR_MS,
  });
  const routes = new Map<string, Route>();
  const hits: string[] = [];
  const sockets = new Set<Socket>();
  const handle = (req: { url?: string | undefined }, res: RouteResponse) => {
    const path = req.url ?? '';
    hits.push(path);
    const route = routes.get(path);
    if (route) route(req, res);
    else {
      res.statusCode = 404;
      res.end('not found');
    }
  };
  const tlsOptions = {
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
    cert: derToPem(leaf.der),
  };
  const server = opts.h2Only
    ? http2.createSecureServer({ ...tlsOptions, allowHTTP1: false }, (req, res) => handle(req, res))
    : https.createServer(tlsOptions, handle);
  server.on('secureConnection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: (path) => `https://localhost:${port}${path}`,
    hits,
    routes,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
