// Where a client of the explicit proxy wants to go, from its untrusted request line: the
// absolute-form target of a plain HTTP request (`GET http://host:port/path`) or the
// authority-form target of a CONNECT (`host:port`). Hosts come back as the client wrote them,
// lowercased, IPv6 without brackets — ready for ProxyConnections.find().
import { isIP } from 'node:net';
import { HttpAnswer } from './http-answer.ts';

export interface ProxyTarget {
  readonly host: string;
  readonly port: number;
  /** Origin-form path and query ("/" when absent); "" for CONNECT. */
  readonly path: string;
}

const HOST_RE = /^[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9]([a-z0-9-]{0,62}))*\.?$/;

/** `http://host[:port][/path][?query]` → target; anything else is 400. */
export function absoluteTarget(url: string): ProxyTarget {
  const m = /^http:\/\/([^/?#]*)([^#]*)$/i.exec(url);
  if (!m) {
    throw new HttpAnswer(400, {
      error: url.startsWith('/')
        ? 'this is an HTTP proxy: send requests in absolute form (set HTTP_PROXY to it)'
        : 'only http:// targets are proxied as requests; use CONNECT for https',
    });
  }
  const rest = m[2]!;
  return {
    ...authority(m[1]!, 80),
    path: rest === '' ? '/' : rest.startsWith('?') ? `/${rest}` : rest,
  };
}

/** `host:port` of a CONNECT → target (path ""); a port is required. */
export function connectTarget(url: string): ProxyTarget {
  return { ...authority(url, 0), path: '' };
}

function authority(a: string, defaultPort: number): { host: string; port: number } {
  if (a.length > 261 || a.includes('@')) throw bad(a);
  let host: string;
  let portText: string | undefined;
  if (a.startsWith('[')) {
    const end = a.indexOf(']');
    if (end < 0) throw bad(a);
    host = a.slice(1, end);
    const after = a.slice(end + 1);
    if (after !== '' && !after.startsWith(':')) throw bad(a);
    portText = after === '' ? undefined : after.slice(1);
    if (isIP(host) !== 6) throw bad(a);
  } else {
    const i = a.lastIndexOf(':');
    host = i < 0 ? a : a.slice(0, i);
    portText = i < 0 ? undefined : a.slice(i + 1);
    host = host.toLowerCase();
    if (isIP(host) !== 4 && !HOST_RE.test(host)) throw bad(a);
  }
  const port =
    portText === undefined ? defaultPort : /^[0-9]{1,5}$/.test(portText) ? Number(portText) : 0;
  if (port < 1 || port > 65535) throw bad(a);
  return { host: host.toLowerCase().replace(/\.$/, ''), port };
}

function bad(a: string): HttpAnswer {
  return new HttpAnswer(400, { error: `not a host:port target: "${a.slice(0, 100)}"` });
}
