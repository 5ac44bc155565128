// The kernel relay's two BPF programs, assembled here as eBPF instructions (no compiler): the
// sk_skb verdict program on the sockets whose incoming bytes are redirected, and the sk_msg
// program on client sockets that send straight to their upstream (sockmap.ts says which maps
// they use). Offsets and helper numbers are the kernel's ABI (include/uapi/linux/bpf.h).

import {
  ADD64_IMM,
  ADD64_REG,
  ATOMIC_ADD,
  ATOMIC_DW,
  CALL,
  EXIT,
  FP,
  JA,
  JEQ_IMM,
  JNE_IMM,
  LDX_DW,
  LDX_W,
  MOV64_IMM,
  MOV64_REG,
  R0,
  R1,
  R2,
  R3,
  R4,
  R6,
  R7,
  R9,
  ST_DW,
  ST_W,
  STX_DW,
  STX_W,
  insn,
  loadMapFd,
} from '../../bpf/assembler.ts';

/** bpf_func_id values (include/uapi/linux/bpf.h). */
const FN_MAP_LOOKUP_ELEM = 1;
const FN_GET_SOCKET_COOKIE = 46;
const FN_MSG_REDIRECT_HASH = 71;
const FN_SK_REDIRECT_HASH = 72;
const SK_PASS = 1;

const AF_INET = 2;
const AF_INET6 = 10;

/**
 * The verdict program, per skb a routed socket receives (flow: its entry, by cookie; len: the
 * skb's payload; total: the one entry of an array, for every socket):
 *   if no flow: return SK_PASS;                                  // not routed (any more)
 *   if bpf_sk_redirect_hash(skb, targets, &cookie, 0) == SK_PASS:
 *     flow.redirected += len;                                    // this socket's count
 *     atomically total += len;                                   // all sockets' (any CPU)
 *     return SK_PASS;                                            // redirected
 *   return SK_PASS;                                              // no target: user space
 */
export function verdictProgram(flowFd: number, targetsFd: number, totalFd: number): Buffer {
  const pass = 30;
  const code: Buffer[] = [
    /* 0 */ insn(MOV64_REG, R6, R1, 0, 0),
    /* 1 */ insn(CALL, 0, 0, 0, FN_GET_SOCKET_COOKIE),
    /* 2 */ insn(STX_DW, FP, R0, -8, 0),
    /* 3-4 */ ...loadMapFd(R1, flowFd),
    /* 5 */ insn(MOV64_REG, R2, FP, 0, 0),
    /* 6 */ insn(ADD64_IMM, R2, 0, 0, -8),
    /* 7 */ insn(CALL, 0, 0, 0, FN_MAP_LOOKUP_ELEM),
    /* 8 */ insn(JEQ_IMM, R0, 0, pass - 9, 0),
    /* 9 */ insn(MOV64_REG, R7, R0, 0, 0),
    /* 10 */ insn(LDX_W, R9, R6, SKB_LEN, 0),
    /* 11 */ insn(MOV64_REG, R1, R6, 0, 0),
    /* 12-13 */ ...loadMapFd(R2, targetsFd),
    /* 14 */ insn(MOV64_REG, R3, FP, 0, 0),
    /* 15 */ insn(ADD64_IMM, R3, 0, 0, -8),
    /* 16 */ insn(MOV64_IMM, R4, 0, 0, 0),
    /* 17 */ insn(CALL, 0, 0, 0, FN_SK_REDIRECT_HASH),
    /* 18 */ insn(JEQ_IMM, R0, 0, pass - 19, 0),
    /* 19 */ insn(LDX_DW, R1, R7, 0, 0),
    /* 20 */ insn(ADD64_REG, R1, R9, 0, 0),
    /* 21 */ insn(STX_DW, R7, R1, 0, 0),
    /* 22 */ insn(ST_W, FP, 0, -12, 0),
    /* 23-24 */ ...loadMapFd(R1, totalFd),
    /* 25 */ insn(MOV64_REG, R2, FP, 0, 0),
    /* 26 */ insn(ADD64_IMM, R2, 0, 0, -12),
    /* 27 */ insn(CALL, 0, 0, 0, FN_MAP_LOOKUP_ELEM),
    /* 28 */ insn(JEQ_IMM, R0, 0, pass - 29, 0),
    /* 29 */ insn(ATOMIC_DW, R0, R9, 0, ATOMIC_ADD),
    /* 30 pass */ insn(MOV64_IMM, R0, 0, 0, SK_PASS),
    /* 31 */ insn(EXIT, 0, 0, 0, 0),
  ];
  return Buffer.concat(code);
}

/** struct __sk_buff: len (u32) first. */
const SKB_LEN = 0;

/** struct sk_msg_md (include/uapi/linux/bpf.h): offsets of the fields the send program reads. */
const MSG_FAMILY = 16;
const MSG_LOCAL_IP4 = 24;
const MSG_LOCAL_IP6 = 44;
const MSG_LOCAL_PORT = 64;

/** Key of `sendTargets`: family (u32), local port (u32, host order), local address (16 bytes). */
export const SEND_KEY_BYTES = 24;

/**
 * The send program, in the client's send(2):
 *   key = { family, local_port, local_ip4 or local_ip6 } at fp - 24 (zero-filled);
 *   r0 = bpf_msg_redirect_hash(msg, sendTargets, &key, 0);   // SK_PASS when redirected
 *   return r0 != SK_DROP ? r0 : SK_PASS;                   // no upstream: the normal path
 */
export function sendProgram(sendTargetsFd: number): Buffer {
  const ip6 = [0, 1, 2, 3].flatMap((i) => [
    insn(LDX_W, R2, R6, MSG_LOCAL_IP6 + 4 * i, 0),
    insn(STX_W, FP, R2, -16 + 4 * i, 0),
  ]);
  return Buffer.concat([
    insn(MOV64_REG, R6, R1, 0, 0),
    insn(ST_DW, FP, 0, -24, 0),
    insn(ST_DW, FP, 0, -16, 0),
    insn(ST_DW, FP, 0, -8, 0),
    insn(LDX_W, R7, R6, MSG_FAMILY, 0),
    insn(STX_W, FP, R7, -24, 0),
    insn(LDX_W, R2, R6, MSG_LOCAL_PORT, 0),
    insn(STX_W, FP, R2, -20, 0),
    insn(JNE_IMM, R7, 0, 3, AF_INET), // → the IPv6 branch
    insn(LDX_W, R2, R6, MSG_LOCAL_IP4, 0),
    insn(STX_W, FP, R2, -16, 0),
    insn(JA, 0, 0, ip6.length + 1, 0), // → the lookup
    insn(JNE_IMM, R7, 0, ip6.length, AF_INET6), // neither: an all-zero address, never a key
    ...ip6,
    insn(MOV64_REG, R1, R6, 0, 0),
    ...loadMapFd(R2, sendTargetsFd),
    insn(MOV64_REG, R3, FP, 0, 0),
    insn(ADD64_IMM, R3, 0, 0, -24),
    insn(MOV64_IMM, R4, 0, 0, 0),
    insn(CALL, 0, 0, 0, FN_MSG_REDIRECT_HASH),
    insn(JNE_IMM, R0, 0, 1, 0),
    insn(MOV64_IMM, R0, 0, 0, SK_PASS),
    insn(EXIT, 0, 0, 0, 0),
  ]);
}
