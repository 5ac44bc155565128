// Locating the Workload API (SPIFFE Workload Endpoint spec §4): explicit configuration first,
// then the value of SPIFFE_ENDPOINT_SOCKET, an RFC 3986 URI that is either `unix:///abs/path`
// (no authority, query or fragment) or `tcp://<IP>:<port>` (an IP literal, no path).
import { isIP } from 'node:net';
import { InvalidArgumentError } from '../../core/errors.ts';

export const ENDPOINT_ENV = 'SPIFFE_ENDPOINT_SOCKET';

export type WorkloadEndpoint =
  | { readonly kind: 'unix'; readonly path: string; readonly uri: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly uri: string };

export interface EndpointOptions {
  /** Explicit address (same URI forms); wins over `env`. */
  readonly address?: string | undefined;
  /** The value of SPIFFE_ENDPOINT_SOCKET, passed in by the caller (see defaultEndpoint()). */
  readonly env?: string | undefined;
}

const bad = (addr: string, why: string): InvalidArgumentError =>
  new InvalidArgumentError(`invalid Workload API address "${clip(addr)}": ${why}`);

/** The endpoint from explicit options, else from `env`; an error when neither is set. */
export function resolveEndpoint(o: EndpointOptions): WorkloadEndpoint {
  if (o.address !== undefined && o.address !== '') return parseEndpoint(o.address);
  if (o.env !== undefined && o.env !== '') return parseEndpoint(o.env);
  throw new InvalidArgumentError(
    `no Workload API address: pass one explicitly or set ${ENDPOINT_ENV}`,
  );
}

/**
 * The one place the SDK reads the environment: the endpoint named by SPIFFE_ENDPOINT_SOCKET in
 * `env` (default: process.env). Throws when it is unset or malformed.
 */
export function defaultEndpoint(
  env: Readonly<Record<string, string | undefined>> = process.env,
): WorkloadEndpoint {
  return resolveEndpoint({ env: env[ENDPOINT_ENV] });
}

export function parseEndpoint(addr: string): WorkloadEndpoint {
  if (typeof addr !== 'string' || addr === '') throw bad(String(addr), 'it is empty');
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(addr);
  if (!m) throw bad(addr, 'it must be a URI with the scheme "unix" or "tcp"');
  const scheme = (m[1] as string).toLowerCase();
  if (scheme === 'unix') return parseUnix(addr);
  if (scheme === 'tcp') return parseTcp(addr);
  throw bad(addr, `unsupported scheme "${m[1]}" (use unix:///path or tcp://IP:port)`);
}

function parseUnix(addr: string): WorkloadEndpoint {
  const rest = addr.slice('unix:'.length);
  if (addr.includes('?')) throw bad(addr, 'a unix URI must not have a query');
  if (addr.includes('#')) throw bad(addr, 'a unix URI must not have a fragment');
  // unix:///abs/path (empty authority) or its equivalent without authority, unix:/abs/path.
  let encoded: string;
  if (rest.startsWith('//')) {
    encoded = rest.slice(2);
    if (encoded !== '' && !encoded.startsWith('/')) {
      throw bad(addr, 'a unix URI must not have an authority (use unix:///absolute/path)');
    }
  } else if (rest.startsWith('/')) {
    encoded = rest;
  } else {
    throw bad(addr, 'a unix URI must have an absolute path (unix:///absolute/path)');
  }
  if (encoded === '' || encoded === '/') throw bad(addr, 'the socket path is missing');
  let path: string;
  try {
    path = decodeURIComponent(encoded);
  } catch {
    throw bad(addr, 'the path has invalid percent-encoding');
  }
  if (path.includes('\0')) throw bad(addr, 'the path contains a NUL byte');
  return { kind: 'unix', path, uri: addr };
}

function parseTcp(addr: string): WorkloadEndpoint {
  const rest = addr.slice('tcp:'.length);
  if (!rest.startsWith('//')) throw bad(addr, 'a tcp URI must have the form tcp://IP:port');
  const authority = rest.slice(2);
  if (/[/?#]/.test(authority)) {
    throw bad(addr, 'a tcp URI must not have a path, query or fragment');
  }
  if (authority.includes('@')) throw bad(addr, 'a tcp URI must not have userinfo');
  const am = /^(\[[^\]]*\]|[^:]*):(\d*)$/.exec(authority);
  if (!am) throw bad(addr, 'a tcp URI must have an IP and a port (tcp://IP:port)');
  const rawHost = am[1] as string;
  const rawPort = am[2] as string;
  const host = rawHost.startsWith('[') ? rawHost.slice(1, -1) : rawHost;
  if (host === '') throw bad(addr, 'the host is missing');
  const family = isIP(host);
  if (family === 0) throw bad(addr, `the host must be an IP address, not "${clip(host)}"`);
  if (family === 6 && !rawHost.startsWith('[')) {
    throw bad(addr, 'an IPv6 address must be in brackets');
  }
  if (rawPort === '') throw bad(addr, 'the port is missing');
  const port = Number(rawPort);
  if (!Number.isInteger(port) || port < 1 || port > 65535 || rawPort.length > 5) {
    throw bad(addr, `the port "${clip(rawPort)}" is not in 1-65535`);
  }
  return { kind: 'tcp', host, port, uri: addr };
}

function clip(s: string): string {
  return s.length > 120 ? s.slice(0, 117) + '...' : s;
}
