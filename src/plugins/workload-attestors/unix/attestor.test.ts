import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import {
  copyFile,
  mkdir,
  mkdtemp,
  readFile,
  realpath,
  rename,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { formatSelector } from '../../../core/selector.ts';
import type { Selector } from '../../../core/selector.ts';
import { createUnixAttestor, unixConfigSchema } from './attestor.ts';
import { parseIdNames } from './account-db.ts';
import { parseProcStatus } from './proc-status.ts';

const live = () => new AbortController().signal;
const texts = (s: readonly Selector[]) => s.map(formatSelector);
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const STATUS = `Name:\tworker
Umask:\t0022
State:\tS (sleeping)
Tgid:\t4242
Pid:\t4242
PPid:\t1
Uid:\t1000\t1001\t1001\t1001
Gid:\t2000\t2001\t2001\t2001
FDSize:\t64
Groups:\t4 27 2001 3000 4
NStgid:\t4242
`;

const PASSWD = `# local users
root:x:0:0:root:/root:/bin/bash
+nisuser::::::
worker:x:1001:2001:Worker:/home/worker:/bin/sh
shadowed:x:1001:2001::/:/bin/false
alice:x:1000:1000::/home/alice:/bin/sh
`;
const GROUP = `root:x:0:
adm:x:4:syslog,worker
sudo:x:27:worker
workers:x:2001:
`;

describe('unix attestor on a fake /proc tree', () => {
  let dir = '';
  let proc = '';
  let binary = '';
  let etc = '';
  const content = Buffer.from('#!/bin/sh\necho not really a binary\n');

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tessera-unix-'));
    proc = path.join(dir, 'proc');
    etc = path.join(dir, 'etc');
    binary = path.join(dir, 'bin', 'worker');
    await mkdir(path.join(proc, '4242'), { recursive: true });
    await mkdir(path.dirname(binary));
    await mkdir(etc);
    await writeFile(binary, content, { mode: 0o755 });
    await writeFile(path.join(proc, '4242', 'status'), STATUS);
    await symlink(binary, path.join(proc, '4242', 'exe'));
    await writeFile(path.join(etc, 'passwd'), PASSWD);
    await writeFile(path.join(etc, 'group'), GROUP);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const attestor = (extra: Record<string, unknown> = {}) =>
    createUnixAttestor(
      unixConfigSchema.parse({
        passwd_path: path.join(etc, 'passwd'),
        group_path: path.join(etc, 'group'),
        ...extra,
      }),
      { procRoot: proc },
    );

  it('names the effective ids, their names, supplementary groups, path and sha256', async () => {
    const selectors = await attestor().attest(4242, live());
    assert.ok(selectors.every((s) => s.type === 'unix'));
    assert.deepEqual(texts(selectors), [
      'unix:uid:1001',
      'unix:user:worker',
      'unix:gid:2001',
      'unix:group:workers',
      'unix:supplementary_gid:4',
      'unix:supplementary_group:adm',
      'unix:supplementary_gid:27',
      'unix:supplementary_group:sudo',
      'unix:supplementary_gid:2001',
      'unix:supplementary_group:workers',
      'unix:supplementary_gid:3000',
      `unix:path:${binary}`,
      `unix:sha256:${sha256(content)}`,
    ]);
  });

  it('leaves out path and sha256 when configured to', async () => {
    const noHash = await attestor({ hash_executable: false }).attest(4242, live());
    assert.ok(texts(noHash).includes(`unix:path:${binary}`));
    assert.ok(!texts(noHash).some((t) => t.startsWith('unix:sha256:')));
    const noPath = await attestor({ discover_workload_path: false }).attest(4242, live());
    assert.ok(
      !texts(noPath).some((t) => t.startsWith('unix:path:') || t.startsWith('unix:sha256')),
    );
  });

  it('re-reads /etc/passwd and /etc/group when they change', async () => {
    const a = attestor({ discover_workload_path: false, account_recheck_ms: 0 });
    assert.ok(texts(await a.attest(4242, live())).includes('unix:user:worker'));
    await sleep(20);
    await writeFile(path.join(etc, 'passwd'), 'renamed:x:1001:2001::/:/bin/sh\n');
    try {
      const after = texts(await a.attest(4242, live()));
      assert.ok(after.includes('unix:user:renamed'));
      assert.ok(!after.includes('unix:user:worker'));
    } finally {
      await writeFile(path.join(etc, 'passwd'), PASSWD);
    }
  });

  it('has no name selectors when the account files are missing', async () => {
    const a = createUnixAttestor(
      unixConfigSchema.parse({
        passwd_path: path.join(dir, 'nope'),
        group_path: path.join(dir, 'nope'),
        discover_workload_path: false,
      }),
      { procRoot: proc },
    );
    assert.deepEqual(texts(await a.attest(4242, live())), [
      'unix:uid:1001',
      'unix:gid:2001',
      'unix:supplementary_gid:4',
      'unix:supplementary_gid:27',
      'unix:supplementary_gid:2001',
      'unix:supplementary_gid:3000',
    ]);
  });

  it('re-hashes a binary rewritten in place even when its mtime is set back', async () => {
    const a = attestor();
    const hashOf = async () =>
      texts(await a.attest(4242, live())).find((t) => t.startsWith('unix:sha256:'));
    assert.equal(await hashOf(), `unix:sha256:${sha256(content)}`);
    const before = await stat(binary);
    await sleep(30);
    const evil = Buffer.from(content.toString().replace('not', 'NOT'));
    assert.equal(evil.length, content.length);
    await writeFile(binary, evil);
    await utimes(binary, before.atime, before.mtime);
    try {
      assert.equal(await hashOf(), `unix:sha256:${sha256(evil)}`);
    } finally {
      await writeFile(binary, content);
    }
  });

  it('refuses to hash an executable over max_binary_bytes', async () => {
    await assert.rejects(attestor({ max_binary_bytes: 8 }).attest(4242, live()), {
      name: 'ResourceExhaustedError',
      message: `unix: the executable of process 4242 is ${content.length} bytes, more than max_binary_bytes (8); raise max_binary_bytes or set hash_executable: false`,
    });
  });

  it('reports a process that is gone as unavailable', async () => {
    await assert.rejects(attestor().attest(999999, live()), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.equal(e.name, 'UnavailableError');
      assert.equal((e as { code?: string }).code, 'unavailable');
      assert.equal(e.message, 'unix: process 999999 exited during attestation');
      return true;
    });
  });

  it('reports a process whose exe vanished mid-attestation as unavailable', async () => {
    await mkdir(path.join(proc, '5151'));
    await writeFile(path.join(proc, '5151', 'status'), STATUS);
    await assert.rejects(attestor().attest(5151, live()), {
      name: 'UnavailableError',
      message: 'unix: process 5151 exited during attestation',
    });
  });

  it('rejects a malformed status file', async () => {
    await mkdir(path.join(proc, '6161'));
    await writeFile(path.join(proc, '6161', 'status'), 'Name:\tx\nUid:\tnope\n');
    await assert.rejects(attestor().attest(6161, live()), {
      name: 'FailedPreconditionError',
      message: 'unix: malformed Uid line in /proc status',
    });
  });

  it('treats a bad pid as a programming error', async () => {
    for (const pid of [0, -1, 1.5, Number.NaN]) {
      await assert.rejects(attestor().attest(pid, live()), TypeError);
    }
  });

  it('honours an aborted signal', async () => {
    const c = new AbortController();
    c.abort(new Error('stop'));
    await assert.rejects(attestor().attest(4242, c.signal), { message: 'stop' });
  });

  it('rejects unknown and bad config keys', () => {
    assert.throws(() => unixConfigSchema.parse({ hash: true }));
    assert.throws(() => unixConfigSchema.parse({ max_binary_bytes: 0 }));
    assert.deepEqual(unixConfigSchema.parse({}), {
      discover_workload_path: true,
      hash_executable: true,
      max_binary_bytes: 268435456,
      passwd_path: '/etc/passwd',
      account_recheck_ms: 1000,
      group_path: '/etc/group',
    });
  });
});

describe('unix attestor on the real /proc', () => {
  const attestor = createUnixAttestor(unixConfigSchema.parse({}), {});

  it('attests this test process', async () => {
    const selectors = texts(await attestor.attest(process.pid, live()));
    const exe = await realpath(process.execPath);
    assert.ok(selectors.includes(`unix:uid:${process.geteuid?.()}`), selectors.join('\n'));
    assert.ok(selectors.includes(`unix:gid:${process.getegid?.()}`));
    assert.ok(selectors.includes(`unix:path:${exe}`));
    assert.ok(selectors.includes(`unix:sha256:${sha256(await readFile(exe))}`));
    for (const g of process.getgroups?.() ?? []) {
      if (g !== process.getegid?.()) assert.ok(selectors.includes(`unix:supplementary_gid:${g}`));
    }
    if (process.geteuid?.() === 0) assert.ok(selectors.includes('unix:user:root'));
  });

  it('hashes what the process runs, not what its path names now', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tessera-unix-exe-'));
    try {
      const bin = path.join(dir, 'sleeper');
      await copyFile('/bin/sleep', bin);
      const original = await readFile(bin);
      const child = spawn(bin, ['30'], { stdio: 'ignore' });
      await once(child, 'spawn');
      try {
        // Replace the file at the path; the running process keeps the old inode.
        await writeFile(path.join(dir, 'other'), 'replaced');
        await rename(path.join(dir, 'other'), bin);
        const selectors = texts(await attestor.attest(child.pid as number, live()));
        assert.ok(selectors.includes(`unix:sha256:${sha256(original)}`));
        assert.ok(selectors.includes(`unix:path:${bin} (deleted)`), selectors.join('\n'));
      } finally {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports a process that has exited as unavailable', async () => {
    const child = spawn('/bin/true', { stdio: 'ignore' });
    const pid = child.pid as number;
    await once(child, 'exit'); // reaped by Node: /proc/<pid> is gone
    await assert.rejects(attestor.attest(pid, live()), {
      name: 'UnavailableError',
      message: `unix: process ${pid} exited during attestation`,
    });
  });
});

describe('proc status and account file parsing', () => {
  it('takes the effective ids and de-duplicates groups', () => {
    assert.deepEqual(parseProcStatus(STATUS, 'unix'), {
      uid: 1001,
      gid: 2001,
      groups: [4, 27, 2001, 3000],
    });
    assert.deepEqual(parseProcStatus('Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n', 'unix'), {
      uid: 0,
      gid: 0,
      groups: [],
    });
  });

  it('rejects missing or out-of-range ids', () => {
    assert.throws(() => parseProcStatus('Gid:\t0\t0\t0\t0\n', 'unix'), {
      message: 'unix: /proc status has no Uid or Gid line',
    });
    assert.throws(() => parseProcStatus('Uid:\t0\t4294967296\nGid:\t0\t0\n', 'unix'), {
      message: 'unix: malformed Uid line in /proc status',
    });
    assert.throws(() => parseProcStatus('Uid:\t0\nGid:\t0\t0\n', 'unix'), {
      message: 'unix: malformed Uid line in /proc status',
    });
  });

  it('keeps the first name for an id and skips comments, NIS and malformed lines', () => {
    assert.deepEqual(
      [...parseIdNames(PASSWD + 'broken\nx:y:notanumber:\n:x:5:\n')],
      [
        [0, 'root'],
        [1001, 'worker'],
        [1000, 'alice'],
      ],
    );
  });
});
