// Loopback TCP connection → the client socket's inode and creator uid, from the kernel's socket
// tables (/proc/net/tcp for IPv4, /proc/net/tcp6 for IPv6 and IPv4-mapped addresses). The tables
// are the agent's network namespace's, which is the only one a loopback connection can come from.
//
// Each row: "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout
// inode ...". Addresses are printed as the kernel's in-memory 32-bit words in hex (%08X per word,
// so each 4-byte group appears byte-reversed on little-endian machines), ports as %04X.
// Untrusted input: nothing here is trusted beyond "the kernel wrote it"; a row that does not parse
// is no match, and more than one matching row is refused by the caller, never picked from.
import { isIPv4, isIPv6 } from 'node:net';
import { endianness } from 'node:os';

export interface TcpEndpoint {
  readonly address: string;
  readonly port: number;
}

export interface TcpSocketRow {
  /** The uid that created the socket (sock_i_uid): a hint for where to look first. */
  readonly uid: number;
  /** The socket's inode: /proc/<pid>/fd/N links to "socket:[inode]". 0: no owner (orphaned). */
  readonly inode: string;
}

/** 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104: the only addresses this door serves. */
export function isLoopback(address: string): boolean {
  if (isIPv4(address)) return address.startsWith('127.');
  if (!isIPv6(address)) return false;
  const a = address.toLowerCase();
  if (a === '::1' || a === '0:0:0:0:0:0:0:1') return true;
  const mapped = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  return mapped?.[1] !== undefined && isIPv4(mapped[1]) && mapped[1].startsWith('127.');
}

/** Which table holds the connection: IPv4 sockets are in tcp, IPv6 (mapped too) in tcp6. */
export function tableOf(local: TcpEndpoint): 'tcp' | 'tcp6' {
  return isIPv4(local.address) ? 'tcp' : 'tcp6';
}

/** An endpoint as the table prints it ("0100007F:1F90"). */
export function tableEndpoint(e: TcpEndpoint, table: 'tcp' | 'tcp6'): string {
  const bytes = addressBytes(e.address, table === 'tcp6' ? 16 : 4);
  const le = endianness() === 'LE';
  let hex = '';
  for (let i = 0; i < bytes.length; i += 4) {
    const word = bytes.subarray(i, i + 4);
    if (le) word.reverse();
    hex += word.toString('hex').toUpperCase();
  }
  return `${hex}:${e.port.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * The row whose local end is `local` and remote end is `remote`. Throws when there is none, or
 * more than one (refused, never guessed).
 */
export function findRow(tableText: string, local: string, remote: string): TcpSocketRow {
  const needle = ` ${local} ${remote} `;
  const at = tableText.indexOf(needle);
  if (at < 0) throw new Error('the connection is not in the socket table (closed already?)');
  if (tableText.indexOf(needle, at + 1) >= 0) throw new Error('the socket table is ambiguous');
  const start = tableText.lastIndexOf('\n', at) + 1;
  const end = tableText.indexOf('\n', at);
  const fields = tableText
    .slice(start, end < 0 ? undefined : end)
    .trim()
    .split(/\s+/);
  const uid = fields[7];
  const inode = fields[9];
  if (uid === undefined || !/^\d+$/.test(uid) || inode === undefined || !/^\d+$/.test(inode)) {
    throw new Error('malformed socket table row');
  }
  return { uid: Number(uid), inode };
}

/** An address's bytes in network order: 4 (IPv4), or 16 (IPv6; IPv4 as ::ffff:a.b.c.d). */
export function addressBytes(address: string, size: 4 | 16): Buffer {
  if (size === 4) {
    if (!isIPv4(address)) throw new Error(`not an IPv4 address: ${address}`);
    return Buffer.from(address.split('.').map(Number));
  }
  if (isIPv4(address)) return addressBytes(`::ffff:${address}`, 16);
  if (!isIPv6(address)) throw new Error(`not an IPv6 address: ${address}`);
  let a = address.toLowerCase().replace(/%.*$/, '');
  // A trailing dotted quad (::ffff:127.0.0.1) becomes two hex groups.
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (quad?.[1]) {
    const b = quad[1].split('.').map(Number) as [number, number, number, number];
    const hex = (x: number, y: number) => ((x << 8) | y).toString(16);
    a = a.slice(0, a.length - quad[1].length) + `${hex(b[0], b[1])}:${hex(b[2], b[3])}`;
  }
  const [head = '', tail] = a.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups =
    tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8) throw new Error(`malformed IPv6 address: ${address}`);
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}
