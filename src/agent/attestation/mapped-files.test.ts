// The executable mappings in a process's fingerprint (mapped-files.ts): parsed from maps, read
// whole, read again only when the status trigger moved; and the fingerprint itself moving when
// this process maps a library and back when it unmaps it.
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import koffi from 'koffi';
import { AttestationCache, processFingerprint } from './attestation-cache.ts';
import { MappedFiles, executableSizes, mappedFilesSignature, preadMaps } from './mapped-files.ts';
import { pidfdOpen } from './peer-credentials.ts';
import { pinProcess, releasePin } from './process-pin.ts';
import { PROBE, probeLibrary } from './testing/probe-library.ts';

const MAPS = [
  '55d0c0000000-55d0c0001000 r--p 00000000 fd:01 100 /usr/bin/node',
  '55d0c0001000-55d0c0002000 r-xp 00001000 fd:01 100 /usr/bin/node',
  '7f0000000000-7f0000001000 r-xp 00000000 fd:01 200 /usr/lib/libc.so.6',
  '7f0000001000-7f0000002000 r--p 00001000 fd:01 200 /usr/lib/libc.so.6',
  '7f0000003000-7f0000004000 r-xp 00000000 fd:01 300 /tmp/a b/lib x.so (deleted)',
  '7f0000005000-7f0000006000 rwxp 00000000 00:00 0 ',
  '7f0000007000-7f0000008000 r-xp 00000000 00:00 0 [vdso]',
  '7f0000009000-7f000000a000 r-xp 00000000 fd:01 200 /usr/lib/libc.so.6',
].join('\n');

describe('mapped files', () => {
  it('signs the files mapped executable: dev, inode and path, sorted, each once', () => {
    assert.equal(
      mappedFilesSignature(MAPS),
      [
        'fd:01 100 /usr/bin/node',
        'fd:01 200 /usr/lib/libc.so.6',
        'fd:01 300 /tmp/a b/lib x.so (deleted)',
      ]
        .sort()
        .join('\n'),
    );
    // Other addresses, same files: the same signature.
    assert.equal(mappedFilesSignature(MAPS.replaceAll('7f00', '7e00')), mappedFilesSignature(MAPS));
    // The same path on another inode is another file.
    assert.notEqual(
      mappedFilesSignature(MAPS.replace('fd:01 300', 'fd:01 301')),
      mappedFilesSignature(MAPS),
    );
  });

  it('takes the VmExe and VmLib lines of status as the trigger', () => {
    const status =
      'Name:\tnode\nVmPeak:\t1 kB\nVmExe:\t  43756 kB\nVmLib:\t   3408 kB\nVmPTE:\t1 kB\n';
    assert.equal(executableSizes(status), 'VmExe:\t  43756 kB' + 'VmLib:\t   3408 kB');
    assert.equal(executableSizes('Name:\tkthreadd\nUid:\t0\n'), '');
  });

  it('reads maps whole through a held file (a seq_file returns a page per read)', () => {
    const fd = openSync('/proc/self/maps', 'r');
    try {
      const held = preadMaps(fd);
      const byPath = readFileSync('/proc/self/maps', 'latin1');
      assert.ok(held.length > 4096, `maps of a node process span pages (${held.length})`);
      assert.equal(mappedFilesSignature(held), mappedFilesSignature(byPath));
    } finally {
      closeSync(fd);
    }
  });

  it('reads maps again only when the trigger moved (or there is none)', () => {
    const m = new MappedFiles();
    let reads = 0;
    const read = () => (reads++, MAPS);
    const first = m.signature('VmLib: 1 kB', read);
    assert.equal(m.signature('VmLib: 1 kB', read), first);
    assert.equal(reads, 1);
    m.signature('VmLib: 2 kB', read);
    assert.equal(reads, 2);
    m.signature('', read);
    m.signature('', read);
    assert.equal(reads, 4, 'no trigger: read every time');
  });

  it('moves the fingerprint when the process maps a library, and back when it unmaps it', async (t) => {
    const probe = probeLibrary();
    if (probe === undefined) return t.skip('no libz to map on this machine');
    const pin = pinProcess(process.pid, pidfdOpen(process.pid));
    const cache = new AttestationCache({ ttlMs: 1000 });
    try {
      const before = processFingerprint(pin);
      const held = cache.fingerprint(pin);
      assert.equal(held, before, 'held files read as the paths do');
      const lib = koffi.load(probe.path) as unknown as { unload(): void };
      let loaded: string;
      try {
        loaded = processFingerprint(pin);
        assert.notEqual(loaded, before);
        assert.ok(loaded.includes(`/${PROBE}`));
        assert.equal(cache.fingerprint(pin), loaded, 'the held trigger moved: maps read again');
      } finally {
        lib.unload();
      }
      assert.equal(processFingerprint(pin), before);
      assert.equal(cache.fingerprint(pin), before);
    } finally {
      cache.release(pin);
      releasePin(pin);
      probe.remove();
    }
  });
});
