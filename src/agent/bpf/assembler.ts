// eBPF instructions written by hand (no compiler): the encoding of one instruction and the
// opcodes and registers the agent's programs use (include/uapi/linux/bpf.h, bpf_common.h).

/** One eBPF instruction: opcode, dst/src registers, 16-bit offset, 32-bit immediate. */
export function insn(code: number, dst: number, src: number, off: number, imm: number): Buffer {
  const b = Buffer.alloc(8);
  b[0] = code;
  b[1] = (dst & 0xf) | ((src & 0xf) << 4);
  b.writeInt16LE(off, 2);
  b.writeInt32LE(imm, 4);
  return b;
}

/** `dst = map` (a map's fd, resolved by the kernel at load): two instruction slots. */
export function loadMapFd(dst: number, mapFd: number): Buffer[] {
  return [insn(LD_IMM64, dst, PSEUDO_MAP_FD, 0, mapFd), insn(0, 0, 0, 0, 0)];
}

export const MOV64_REG = 0xbf;
export const MOV64_IMM = 0xb7;
export const ADD64_IMM = 0x07;
export const AND64_IMM = 0x57;
export const ADD64_REG = 0x0f;
export const STX_DW = 0x7b;
export const STX_W = 0x63;
export const ST_DW = 0x7a;
export const ST_W = 0x62;
export const LDX_DW = 0x79;
export const LDX_W = 0x61;
export const LDX_H = 0x69;
/** BPF_STX | BPF_ATOMIC | BPF_DW with imm BPF_ADD: a locked 64-bit add to memory. */
export const ATOMIC_DW = 0xdb;
export const ATOMIC_ADD = 0x00;
export const JA = 0x05;
export const JEQ_IMM = 0x15;
export const JNE_IMM = 0x55;
export const JNE_REG = 0x5d;
const LD_IMM64 = 0x18;
export const CALL = 0x85;
export const EXIT = 0x95;
const PSEUDO_MAP_FD = 1;
export const R0 = 0;
export const R1 = 1;
export const R2 = 2;
export const R3 = 3;
export const R4 = 4;
export const R6 = 6;
export const R7 = 7;
export const R8 = 8;
export const R9 = 9;
export const FP = 10;
