// The kernel's own type information (BTF, /sys/kernel/btf/vmlinux): where a field sits in a kernel
// struct of the running kernel, and the id of a kernel function — what a tracing program is
// checked against (its loads are verified against these types, and it attaches by that id).
// Only what the agent's programs ask for is read; the format is include/uapi/linux/btf.h.
import { readFileSync } from 'node:fs';

const MAGIC = 0xeb9f;
const KIND_INT = 1;
const KIND_ARRAY = 3;
const KIND_STRUCT = 4;
const KIND_UNION = 5;
const KIND_ENUM = 6;
const KIND_FUNC = 12;
const KIND_FUNC_PROTO = 13;
const KIND_VAR = 14;
const KIND_DATASEC = 15;
const KIND_DECL_TAG = 17;
const KIND_ENUM64 = 19;

export class KernelBtf {
  readonly #data: Buffer;
  readonly #strings: number;
  /** Type id → where its record starts (id 0 is void: no record). */
  readonly #at: Uint32Array;
  readonly #count: number;

  constructor(data: Buffer) {
    if (data.length < 24 || data.readUInt16LE(0) !== MAGIC) {
      throw new Error('not BTF (bad magic, or not little-endian)');
    }
    const hdrLen = data.readUInt32LE(4);
    const typeOff = hdrLen + data.readUInt32LE(8);
    const typeEnd = typeOff + data.readUInt32LE(12);
    this.#strings = hdrLen + data.readUInt32LE(16);
    const stringsEnd = this.#strings + data.readUInt32LE(20);
    if (typeEnd > data.length || stringsEnd > data.length) throw new Error('truncated BTF');
    this.#data = data;
    // Records are at least 12 bytes: that many ids at most. Only offsets are kept (no object per
    // type: a kernel has ~100,000 of them).
    const at = new Uint32Array(Math.floor((typeEnd - typeOff) / 12) + 1);
    let id = 1;
    for (let o = typeOff; o < typeEnd; id++) {
      at[id] = o;
      const info = data.readUInt32LE(o + 4);
      o += 12 + extraBytes((info >>> 24) & 0x1f, info & 0xffff);
    }
    this.#at = at;
    this.#count = id;
  }

  /** The type id of kernel function `name` (what BPF_PROG_LOAD's attach_btf_id names). */
  funcId(name: string): number {
    const id = this.#named(name, (kind) => kind === KIND_FUNC);
    if (id === undefined) throw new Error(`the kernel has no function ${name} in its BTF`);
    return id;
  }

  /**
   * The byte offset of `member` in struct (or union) `struct`, looking into anonymous struct and
   * union members as C does. A bit field is refused (no byte offset to load from).
   */
  offsetOf(struct: string, member: string): number {
    const id = this.#named(struct, (kind) => kind === KIND_STRUCT || kind === KIND_UNION);
    if (id === undefined) throw new Error(`the kernel has no struct ${struct} in its BTF`);
    const bits = this.#find(id, member);
    if (bits === undefined) throw new Error(`struct ${struct} has no member ${member}`);
    if (bits % 8 !== 0) throw new Error(`${struct}.${member} is not byte-aligned`);
    return bits / 8;
  }

  /** The first type of a kind `wanted` accepts named `name`, or undefined. */
  #named(name: string, wanted: (kind: number) => boolean): number | undefined {
    const off = this.#nameOffset(name);
    if (off < 0) return undefined;
    for (let id = 1; id < this.#count; id++) {
      const at = this.#at[id]!;
      if (this.#data.readUInt32LE(at) === off && wanted(this.#kind(id))) return id;
    }
    return undefined;
  }

  #kind(id: number): number {
    return (this.#data.readUInt32LE(this.#at[id]! + 4) >>> 24) & 0x1f;
  }

  /** Bit offset of `member` within the struct/union `id`, or undefined. */
  #find(id: number, member: string): number | undefined {
    if (id <= 0 || id >= this.#count) return undefined;
    const at = this.#at[id]!;
    const info = this.#data.readUInt32LE(at + 4);
    const kind = (info >>> 24) & 0x1f;
    if (kind !== KIND_STRUCT && kind !== KIND_UNION) return undefined;
    const kindFlag = (info & 0x80000000) !== 0;
    for (let i = 0; i < (info & 0xffff); i++) {
      const m = at + 12 + 12 * i;
      const name = this.#name(this.#data.readUInt32LE(m));
      const raw = this.#data.readUInt32LE(m + 8);
      if (kindFlag && raw >>> 24 !== 0) {
        if (name === member) throw new Error(`${member} is a bit field`);
        continue;
      }
      const offset = kindFlag ? raw & 0xffffff : raw;
      if (name === member) return offset;
      if (name === '') {
        const inner = this.#find(this.#data.readUInt32LE(m + 4), member);
        if (inner !== undefined) return offset + inner;
      }
    }
    return undefined;
  }

  /** Where `name` is in the string section (each string is there once), or -1. */
  #nameOffset(name: string): number {
    const at = this.#data.indexOf(Buffer.from(`\0${name}\0`, 'latin1'), this.#strings);
    return at < 0 ? -1 : at + 1 - this.#strings;
  }

  #name(off: number): string {
    const start = this.#strings + off;
    const end = this.#data.indexOf(0, start);
    return this.#data.toString('latin1', start, end < 0 ? start : end);
  }
}

/** Bytes after the 12-byte common header, per kind (btf.h). */
function extraBytes(kind: number, vlen: number): number {
  switch (kind) {
    case KIND_INT:
    case KIND_VAR:
    case KIND_DECL_TAG:
      return 4;
    case KIND_ARRAY:
      return 12;
    case KIND_STRUCT:
    case KIND_UNION:
    case KIND_DATASEC:
    case KIND_ENUM64:
      return 12 * vlen;
    case KIND_ENUM:
    case KIND_FUNC_PROTO:
      return 8 * vlen;
    default:
      return 0; // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
  }
}

let vmlinux: KernelBtf | undefined;

/** The running kernel's BTF, read once. Throws when the kernel has none. */
export function kernelBtf(): KernelBtf {
  vmlinux ??= new KernelBtf(readFileSync('/sys/kernel/btf/vmlinux'));
  return vmlinux;
}
