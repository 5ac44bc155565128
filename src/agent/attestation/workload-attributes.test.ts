// The libraries of a process from its maps, and the attributes of a real process (this one).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { release } from 'node:os';
import { mappedLibraries, workloadAttributeSource } from './workload-attributes.ts';

const MAPS = `55950a450000-55950a452000 r--p 00000000 fe:00 260131   /usr/bin/node
55950a452000-55950a457000 r-xp 00002000 fe:00 260131   /usr/bin/node
7f1c00000000-7f1c00021000 rw-p 00000000 00:00 0
7f1c10000000-7f1c10028000 r--p 00000000 fe:00 1311   /usr/lib/x86_64-linux-gnu/libc.so.6
7f1c10028000-7f1c1019d000 r-xp 00028000 fe:00 1311   /usr/lib/x86_64-linux-gnu/libc.so.6
7f1c20000000-7f1c20100000 r-xp 00000000 fe:00 1400   /usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30
7f1c30000000-7f1c30001000 r--p 00000000 fe:00 1500   /usr/share/locale/locale-archive
7ffd0000000-7ffd0021000 rw-p 00000000 00:00 0          [stack]
`;

describe('workload attributes', () => {
  it('libraries are the executable file mappings other than the executable, once each', () => {
    assert.deepEqual(mappedLibraries(MAPS), [
      '/usr/lib/x86_64-linux-gnu/libc.so.6',
      '/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30',
    ]);
  });

  it('libraries come sorted by path, whatever order ASLR mapped them in', () => {
    const shuffled = MAPS.replace('7f1c10028000', '7f1c40028000').replace(
      '7f1c20000000',
      '7f1c00100000',
    );
    const lines = shuffled.split('\n');
    const reordered = [
      lines[0],
      lines[1],
      lines[5],
      lines[4],
      lines[3],
      lines[2],
      ...lines.slice(6),
    ];
    assert.deepEqual(mappedLibraries(reordered.join('\n')), mappedLibraries(MAPS));
  });

  it('collects the binary digest from the unix selector, the kernel release and hashed libraries', async () => {
    const source = workloadAttributeSource({ kernelRelease: release() });
    const hex = 'ab'.repeat(32);
    const a = await source.collect(
      { pid: process.pid, uid: 0, gid: 0 },
      [
        { type: 'unix', value: `sha256:${hex}` },
        { type: 'docker', value: `image_config_digest:sha256:${'cd'.repeat(32)}` },
      ],
      new AbortController().signal,
    );
    assert.equal(a['binary.sha256'], `sha256:${hex}`);
    assert.equal(a['image.digest'], `sha256:${'cd'.repeat(32)}`);
    assert.equal(a['kernel.release'], release());
    const libs = Object.keys(a).filter((k) => k.startsWith('library.'));
    assert.ok(libs.length > 0, 'node maps shared libraries');
    assert.match(a['library.0'] ?? '', /^sha256:[0-9a-f]{64} \//);
  });
});
