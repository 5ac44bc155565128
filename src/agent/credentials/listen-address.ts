// The loopback HTTP door's listen address (`credentials.http_listen`): an IP literal on loopback
// and a port. A name ("localhost") is refused: what it resolves to is not ours to trust, and a
// non-loopback listener would offer credentials to the network.
import { isLoopback } from '../attestation/proc-net-tcp.ts';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** Parses `127.0.0.1:PORT` or `[::1]:PORT`; throws an Error saying what is wrong. */
export function parseLoopbackListen(v: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|(\d+\.\d+\.\d+\.\d+)):(\d{1,5})$/.exec(v);
  const host = m?.[1] ?? m?.[2];
  if (!m || host === undefined) {
    throw new Error(`expected 127.0.0.1:PORT or [::1]:PORT, got "${v.slice(0, 100)}"`);
  }
  const port = Number(m[3]);
  if (port > 65535) throw new Error('port must be 0..65535');
  if (!isLoopback(host)) {
    throw new Error(
      `${host} is not a loopback address: the credential API listens on loopback only`,
    );
  }
  return { host, port };
}
