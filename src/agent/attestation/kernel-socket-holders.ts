// Socket inode → the processes holding it, asked of the kernel in one pass: a BPF iterator over
// every open file of every task (bpf_iter_task_file) whose program reports the tasks (thread-group
// id) and descriptors whose file is the socket. The same answer as the /proc walk of
// socket-owner.ts — complete, from the kernel's own tables — without a path lookup and a readlink
// per descriptor of the machine: the walk was a third of the agent's CPU per new proxied
// connection (docs/threat-model.md "Cost").
//
// What the program checks per file (types and offsets from the running kernel's BTF, btf.ts):
//   file->f_inode->i_mode is a socket (S_IFSOCK) and its superblock is sockfs (SOCKFS_MAGIC) —
//   an O_PATH descriptor of a socket file on disk is not a socket, as "socket:[N]" says for the
//   /proc walk — and file->f_inode->i_ino is the inode looked for (one entry of an array map,
//   set before each pass; passes run one at a time);
//   then it writes { tgid, fd } (two u32) to the iterator's output.
// The kernel visits each thread group's descriptor table once (threads sharing it are skipped).
// Ids are the kernel's (initial pid namespace): available only when they are the agent's own,
// which `open` proves by asking for a socket of its own and finding its own pid; otherwise (a
// kernel without BTF or bpf_iter, no CAP_BPF/CAP_PERFMON, another pid namespace) `open` throws
// and socket-owner.ts walks /proc.
import { closeSync, fstatSync, read, readSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { kernelBtf } from '../bpf/btf.ts';
import { type Libc, loadLibc } from '../bpf/libc.ts';
import {
  AND64_IMM,
  CALL,
  EXIT,
  FP,
  JEQ_IMM,
  JNE_IMM,
  JNE_REG,
  LDX_DW,
  LDX_H,
  LDX_W,
  MOV64_IMM,
  MOV64_REG,
  R0,
  R1,
  R2,
  R3,
  R6,
  R7,
  R8,
  R9,
  ADD64_IMM,
  JA,
  ST_W,
  STX_W,
  insn,
  loadMapFd,
} from '../bpf/assembler.ts';
import {
  BPF_ANY,
  BPF_MAP_TYPE_ARRAY,
  createIteratorLink,
  createMap,
  mapUpdate,
  openIterator,
} from '../bpf/bpf.ts';
import type { SocketHolder } from './socket-owner.ts';

const FN_MAP_LOOKUP_ELEM = 1;
const FN_SEQ_WRITE = 127;
const S_IFMT = 0o170000;
const S_IFSOCK = 0o140000;
const SOCKFS_MAGIC = 0x534f434b;
/** One record of the output: tgid (u32), fd (u32). */
const RECORD = 8;
/** A pass read at once may pause the event loop this long; a longer one goes to the pool. */
const SYNC_BUDGET_MS = 2;
/** Both fields of the record the pass's last call writes: no tgid or descriptor is -1. */
const END_MARK = -1;

export interface KernelSocketHolders {
  /** Every (thread group, descriptor) holding the socket, in the kernel's order. */
  holders(inode: string): Promise<SocketHolder[]>;
}

/** Loads the iterator and proves its ids are ours; throws when it cannot be used here. */
async function openKernelSocketHolders(): Promise<KernelSocketHolders> {
  const c = loadLibc();
  const btf = kernelBtf();
  const target = createMap(c, BPF_MAP_TYPE_ARRAY, 4, 8, 1, 'tessera_sockino');
  let link = -1;
  try {
    link = createIteratorLink(
      c,
      program(target, {
        meta: btf.offsetOf('bpf_iter__task_file', 'meta'),
        task: btf.offsetOf('bpf_iter__task_file', 'task'),
        fd: btf.offsetOf('bpf_iter__task_file', 'fd'),
        file: btf.offsetOf('bpf_iter__task_file', 'file'),
        seq: btf.offsetOf('bpf_iter_meta', 'seq'),
        fInode: btf.offsetOf('file', 'f_inode'),
        iMode: btf.offsetOf('inode', 'i_mode'),
        iIno: btf.offsetOf('inode', 'i_ino'),
        iSb: btf.offsetOf('inode', 'i_sb'),
        sMagic: btf.offsetOf('super_block', 's_magic'),
        tgid: btf.offsetOf('task_struct', 'tgid'),
      }),
      btf.funcId('bpf_iter_task_file'),
      'tessera_sockown',
    );
    const walker = new Walker(c, target, link);
    await provesOwnIds(walker);
    return walker;
  } catch (e) {
    if (link >= 0) c.close(link);
    c.close(target);
    throw e;
  }
}

interface Offsets {
  readonly meta: number;
  readonly task: number;
  readonly fd: number;
  readonly file: number;
  readonly seq: number;
  readonly fInode: number;
  readonly iMode: number;
  readonly iIno: number;
  readonly iSb: number;
  readonly sMagic: number;
  readonly tgid: number;
}

/**
 *   file = ctx->file; if (!file) { out = { -1, -1 }; goto write; }   // the pass's last call
 *   inode = file->f_inode;
 *   if ((inode->i_mode & S_IFMT) != S_IFSOCK) return 0;
 *   if (inode->i_sb->s_magic != SOCKFS_MAGIC) return 0;
 *   want = map_lookup(target, 0); if (!want || *want != inode->i_ino) return 0;
 *   task = ctx->task; if (!task) return 0;
 *   out = { task->tgid, ctx->fd };
 *   write: bpf_seq_write(ctx->meta->seq, &out, 8); return 0;
 */
function program(targetFd: number, o: Offsets): Buffer {
  const code: Buffer[] = [];
  const exits: Buffer[] = []; // jumps to the exit, their offsets set once it is known
  const jump = (j: Buffer) => {
    exits.push(j);
    code.push(j);
  };
  const end = insn(JEQ_IMM, R7, 0, 0, 0); // → the end marker
  code.push(insn(MOV64_REG, R6, R1, 0, 0), insn(LDX_DW, R7, R6, o.file, 0), end);
  code.push(
    insn(LDX_DW, R8, R7, o.fInode, 0),
    insn(LDX_H, R2, R8, o.iMode, 0),
    insn(AND64_IMM, R2, 0, 0, S_IFMT),
  );
  jump(insn(JNE_IMM, R2, 0, 0, S_IFSOCK));
  code.push(insn(LDX_DW, R2, R8, o.iSb, 0), insn(LDX_DW, R2, R2, o.sMagic, 0));
  jump(insn(JNE_IMM, R2, 0, 0, SOCKFS_MAGIC));
  code.push(
    insn(LDX_DW, R9, R8, o.iIno, 0),
    insn(ST_W, FP, 0, -4, 0),
    ...loadMapFd(R1, targetFd),
    insn(MOV64_REG, R2, FP, 0, 0),
    insn(ADD64_IMM, R2, 0, 0, -4),
    insn(CALL, 0, 0, 0, FN_MAP_LOOKUP_ELEM),
  );
  jump(insn(JEQ_IMM, R0, 0, 0, 0));
  code.push(insn(LDX_DW, R2, R0, 0, 0));
  jump(insn(JNE_REG, R2, R9, 0, 0));
  code.push(insn(LDX_DW, R2, R6, o.task, 0));
  jump(insn(JEQ_IMM, R2, 0, 0, 0));
  code.push(
    insn(LDX_W, R3, R2, o.tgid, 0),
    insn(STX_W, FP, R3, -16, 0),
    insn(LDX_W, R3, R6, o.fd, 0),
    insn(STX_W, FP, R3, -12, 0),
  );
  const write = code.length;
  code.push(
    insn(LDX_DW, R1, R6, o.meta, 0),
    insn(LDX_DW, R1, R1, o.seq, 0),
    insn(MOV64_REG, R2, FP, 0, 0),
    insn(ADD64_IMM, R2, 0, 0, -16),
    insn(MOV64_IMM, R3, 0, 0, RECORD),
    insn(CALL, 0, 0, 0, FN_SEQ_WRITE),
  );
  const exit = code.length;
  code.push(insn(MOV64_IMM, R0, 0, 0, 0), insn(EXIT, 0, 0, 0, 0));
  // The pass's last call (no file): the end marker, then the same write.
  end.writeInt16LE(code.length - code.indexOf(end) - 1, 2);
  code.push(
    insn(ST_W, FP, 0, -16, END_MARK),
    insn(ST_W, FP, 0, -12, END_MARK),
    insn(JA, 0, 0, write - code.length - 3, 0),
  );
  for (const j of exits) j.writeInt16LE(exit - code.indexOf(j) - 1, 2);
  return Buffer.concat(code);
}

class Walker implements KernelSocketHolders {
  readonly #c: Libc;
  readonly #target: number;
  readonly #link: number;
  readonly #key = Buffer.alloc(4);
  readonly #value = Buffer.alloc(8);
  readonly #out = Buffer.allocUnsafe(64 * RECORD);
  #queue: Promise<unknown> = Promise.resolve();
  /** The last read took longer than SYNC_BUDGET_MS: read on the thread pool. */
  #slow = false;

  constructor(c: Libc, target: number, link: number) {
    this.#c = c;
    this.#target = target;
    this.#link = link;
  }

  /**
   * One pass at a time (the target inode is the map's one entry while its reads run). The
   * kernel's pass costs ~0.1 µs per descriptor of the machine: where the last one took under
   * SYNC_BUDGET_MS it is read at once (a thread-pool round trip costs ~100 µs more here); on a
   * machine where it took longer, on libuv's thread pool, so it never stalls the event loop.
   */
  holders(inode: string): Promise<SocketHolder[]> {
    const pass = this.#queue.then(() => this.#pass(inode));
    this.#queue = pass.catch(() => undefined);
    return pass;
  }

  async #pass(inode: string): Promise<SocketHolder[]> {
    this.#value.writeBigUInt64LE(BigInt(inode));
    mapUpdate(this.#c, this.#target, this.#key, this.#value, BPF_ANY);
    const fd = openIterator(this.#c, this.#link);
    try {
      const found: SocketHolder[] = [];
      let held = 0;
      for (;;) {
        const started = performance.now();
        const n = this.#slow
          ? await readAsync(fd, this.#out, held, this.#out.length - held)
          : readSync(fd, this.#out, held, this.#out.length - held, null);
        this.#slow = performance.now() - started > SYNC_BUDGET_MS;
        if (n === 0) throw new Error('the socket-holder iterator ended without its end mark');
        held += n;
        const whole = held - (held % RECORD);
        for (let at = 0; at < whole; at += RECORD) {
          const pid = this.#out.readInt32LE(at);
          const holderFd = this.#out.readInt32LE(at + 4);
          if (pid === END_MARK && holderFd === END_MARK) return found; // the whole pass
          found.push({ pid, fd: holderFd });
        }
        this.#out.copy(this.#out, 0, whole, held);
        held -= whole;
      }
    } finally {
      closeSync(fd);
    }
  }
}

/** read(2) on the thread pool; the byte count. */
function readAsync(fd: number, buf: Buffer, offset: number, length: number): Promise<number> {
  return new Promise((resolve, reject) =>
    read(fd, buf, offset, length, null, (e, n) => (e ? reject(e) : resolve(n))),
  );
}

/** A listening socket of ours must come back as held by process.pid (and nobody else). */
async function provesOwnIds(w: Walker): Promise<void> {
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  try {
    const handle = (server as unknown as { _handle?: { fd?: number } })._handle;
    const fd = handle?.fd;
    if (fd === undefined || fd < 0) throw new Error('no descriptor to check the iterator with');
    const inode = String(fstatSync(fd).ino);
    const found = await w.holders(inode);
    if (found.length !== 1 || found[0]?.pid !== process.pid || found[0]?.fd !== fd) {
      throw new Error(
        `the kernel's task ids are not this process's (pid namespace?): ${JSON.stringify(found)} for pid ${process.pid} fd ${fd}`,
      );
    }
  } finally {
    server.close();
  }
}

let shared: Promise<KernelSocketHolders | { readonly reason: string }> | undefined;

/** The process's one iterator, opened on first use, or why the kernel cannot answer here. */
export function kernelSocketHolders(): Promise<KernelSocketHolders | { readonly reason: string }> {
  shared ??= openKernelSocketHolders().catch((e: unknown) => ({
    reason: e instanceof Error ? e.message : String(e),
  }));
  return shared;
}
