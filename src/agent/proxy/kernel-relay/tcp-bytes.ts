// How many payload bytes a TCP socket has received and has been given to send, from the kernel's
// own counters (getsockopt TCP_INFO, struct tcp_info in include/uapi/linux/tcp.h): what tells
// the kernel relay that every byte one socket received has been handed to the other.
import { type Libc, loadLibc } from '../../bpf/libc.ts';

const IPPROTO_TCP = 6;
const TCP_INFO = 11;
const TCP_INFO_BYTES = 232;
/** Offsets in struct tcp_info (stable: fields are only ever appended). */
const STATE = 0; // __u8 tcpi_state
/** States after the peer's FIN (include/net/tcp_states.h): TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK, CLOSING. */
const FIN_RECEIVED = new Set([6, 7, 8, 9, 11]);
const NOTSENT_BYTES = 144; // __u32 tcpi_notsent_bytes: queued, not yet sent
const BYTES_RECEIVED = 128; // __u64 tcpi_bytes_received (RFC 4898 HCThruOctetsReceived, FIN included)
const BYTES_SENT = 200; // __u64 tcpi_bytes_sent, retransmissions included (Linux ≥ 4.19)
const BYTES_RETRANS = 208; // __u64 tcpi_bytes_retrans

export interface TcpBytes {
  /** Payload bytes received in order (the peer's FIN not counted). */
  readonly received: bigint;
  /** Payload bytes the socket was given to send (sent once, or still queued). */
  readonly written: bigint;
}

export function tcpBytes(fd: number, c: Libc = loadLibc()): TcpBytes {
  const b = Buffer.alloc(TCP_INFO_BYTES);
  const len = [TCP_INFO_BYTES];
  if (c.getsockopt(fd, IPPROTO_TCP, TCP_INFO, b, len) !== 0) {
    throw new Error(`getsockopt(TCP_INFO) failed: errno ${c.koffi.errno()}`);
  }
  if ((len[0] ?? 0) < BYTES_RETRANS + 8) {
    throw new Error(`getsockopt(TCP_INFO) returned ${len[0]} bytes (kernel older than 4.19?)`);
  }
  // tcpi_bytes_received follows rcv_nxt, which the FIN advances by one.
  const fin = FIN_RECEIVED.has(b.readUInt8(STATE)) ? 1n : 0n;
  return {
    received: b.readBigUInt64LE(BYTES_RECEIVED) - fin,
    written:
      b.readBigUInt64LE(BYTES_SENT) -
      b.readBigUInt64LE(BYTES_RETRANS) +
      BigInt(b.readUInt32LE(NOTSENT_BYTES)),
  };
}
