// Where a REDIRECTed connection was going (docs/injection.md, "Transparent redirect").
//
// iptables' nat REDIRECT rewrites the destination to the agent's listener and keeps the original
// in the connection's conntrack entry; the kernel returns it for the accepted socket with
// getsockopt(SOL_IP, SO_ORIGINAL_DST) (IPv4, struct sockaddr_in) or getsockopt(SOL_IPV6,
// IP6T_SO_ORIGINAL_DST) (IPv6, struct sockaddr_in6). Node has no API for it, so it is called
// through koffi on the socket's fd, as SO_PEERCRED is (attestation/peer-credentials.ts): koffi
// ships prebuilt binaries, so `npm ci` needs no compiler, and the agent already loads it.
//
// Trust: the answer comes from the kernel's connection tracking, not from the client. A
// connection that was not redirected (made to the listener directly) has no entry (ENOENT) or
// one whose original destination is the listener itself: both are refused.
import type { Socket } from 'node:net';
import { endianness } from 'node:os';
import { socketFd, socketOption } from '../../attestation/peer-credentials.ts';

const SOL_IP = 0;
const SOL_IPV6 = 41;
/** linux/netfilter_ipv4.h SO_ORIGINAL_DST; linux/netfilter_ipv6/ip6_tables.h IP6T_SO_ORIGINAL_DST. */
const SO_ORIGINAL_DST = 80;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCKADDR_IN = 16;
const SOCKADDR_IN6 = 28;
const ENOENT = 2;

export interface OriginalDestination {
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

/**
 * The original destination of an accepted, REDIRECTed TCP connection. Throws (with what the
 * kernel said) when the connection was not redirected or the socket has gone.
 */
export function originalDestination(socket: Socket): OriginalDestination {
  const fd = socketFd(socket);
  const v6 =
    socket.localAddress !== undefined &&
    socket.localAddress.includes(':') &&
    !socket.localAddress.startsWith('::ffff:');
  const r = v6
    ? socketOption(fd, SOL_IPV6, SO_ORIGINAL_DST, SOCKADDR_IN6)
    : socketOption(fd, SOL_IP, SO_ORIGINAL_DST, SOCKADDR_IN);
  if (!r.ok) {
    throw new Error(
      r.errno === ENOENT
        ? 'the connection was not redirected (no original destination in the NAT table)'
        : `getsockopt(SO_ORIGINAL_DST) failed: errno ${r.errno}`,
    );
  }
  const dst = parseSockaddr(r.value);
  if (dst.port === socket.localPort && sameAddress(dst.address, socket.localAddress ?? '')) {
    throw new Error('the connection was not redirected (made to the listener directly)');
  }
  return dst;
}

function sameAddress(a: string, b: string): boolean {
  return a === b || `::ffff:${a}` === b;
}

/** struct sockaddr_in / sockaddr_in6: family in host order, port and address in network order. */
export function parseSockaddr(b: Buffer): OriginalDestination {
  if (b.length < 2) throw new Error('SO_ORIGINAL_DST returned no address');
  const family = endianness() === 'LE' ? b.readUInt16LE(0) : b.readUInt16BE(0);
  if (family === AF_INET && b.length >= 8) {
    return { address: [...b.subarray(4, 8)].join('.'), port: b.readUInt16BE(2), family: 4 };
  }
  if (family === AF_INET6 && b.length >= 24) {
    const groups: string[] = [];
    for (let i = 8; i < 24; i += 2) groups.push(b.readUInt16BE(i).toString(16));
    return { address: compressIpv6(groups), port: b.readUInt16BE(2), family: 6 };
  }
  throw new Error(`SO_ORIGINAL_DST returned an address of unknown family (${b.length} bytes)`);
}

/** RFC 5952 text: the longest run (≥ 2) of zero groups becomes "::". */
function compressIpv6(groups: readonly string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < groups.length;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}
