// The kernel's BTF as the agent reads it: members found (also inside anonymous unions, as the
// iterator context's are), functions by name, and what is missing or malformed named.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { KernelBtf } from './btf.ts';

const VMLINUX = '/sys/kernel/btf/vmlinux';
const skip = existsSync(VMLINUX) ? false : 'this kernel has no BTF';

test(
  "the running kernel's types: members, members of anonymous unions, functions",
  { skip },
  () => {
    const btf = new KernelBtf(readFileSync(VMLINUX));
    // struct bpf_iter__task_file { union { meta }; union { task }; u32 fd; union { file }; }
    assert.equal(btf.offsetOf('bpf_iter__task_file', 'meta'), 0);
    assert.equal(btf.offsetOf('bpf_iter__task_file', 'task'), 8);
    assert.equal(btf.offsetOf('bpf_iter__task_file', 'fd'), 16);
    assert.equal(btf.offsetOf('bpf_iter__task_file', 'file'), 24);
    assert.equal(btf.offsetOf('inode', 'i_mode'), 0); // the first member of struct inode
    // pid_t pid; pid_t tgid; — side by side in struct task_struct
    assert.equal(btf.offsetOf('task_struct', 'tgid'), btf.offsetOf('task_struct', 'pid') + 4);
    assert.ok(btf.funcId('bpf_iter_task_file') > 0);
    assert.throws(() => btf.funcId('no_such_function_here'), /no function no_such_function_here/);
    assert.throws(() => btf.offsetOf('no_such_struct', 'x'), /no struct no_such_struct/);
    assert.throws(() => btf.offsetOf('inode', 'no_such_member'), /struct inode has no member/);
  },
);

test('what is not BTF, or is cut short, is refused', () => {
  assert.throws(() => new KernelBtf(Buffer.alloc(64)), /not BTF/);
  const header = Buffer.alloc(24);
  header.writeUInt16LE(0xeb9f, 0);
  header.writeUInt32LE(24, 4); // hdr_len
  header.writeUInt32LE(1000, 12); // type_len past the end
  assert.throws(() => new KernelBtf(header), /truncated BTF/);
});
