// A workload that maps and unmaps a shared library while it holds a FetchX509SVID stream open
// (library-child.ts), driven from a test: re-checked while running (docs/posture.md).
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { REPO } from './server-process.ts';

export { PROBE, probeLibrary } from '../../src/agent/attestation/testing/probe-library.ts';

/**
 * A workload holding a FetchX509SVID stream open (helpers/library-child.ts), told to map and
 * unmap `library`; its output is read line by line, each wait bounded.
 */
export class LibraryChild {
  readonly #p: ChildProcessWithoutNullStreams;
  readonly #lines: string[] = [];
  #wake: (() => void) | undefined;
  #stderr = '';

  constructor(socketPath: string, library: string, uid: number) {
    this.#p = spawn(
      process.execPath,
      [path.join(REPO, 'test/helpers/library-child.ts'), socketPath, library],
      { uid, gid: uid, stdio: 'pipe' },
    );
    createInterface({ input: this.#p.stdout }).on('line', (l) => {
      this.#lines.push(l);
      this.#wake?.();
    });
    this.#p.stderr.on('data', (d: Buffer) => (this.#stderr += d.toString()));
  }

  send(command: 'load' | 'unload' | 'open'): void {
    this.#p.stdin.write(`${command}\n`);
  }

  /**
   * Reads lines until one is `want`, within `ms`; a line that is neither `want` nor `skip`
   * fails. Returns the ms it took.
   */
  async expect(want: string, ms: number, skip: (line: string) => boolean = () => false) {
    const started = Date.now();
    for (;;) {
      const line = this.#lines.shift();
      if (line === want) return Date.now() - started;
      if (line !== undefined) {
        assert.ok(skip(line), `expected "${want}", got "${line}" (stderr: ${this.#stderr})`);
        continue;
      }
      const left = ms - (Date.now() - started);
      if (left <= 0) assert.fail(`no "${want}" within ${ms} ms (stderr: ${this.#stderr})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  async stop(): Promise<void> {
    if (this.#p.exitCode !== null || this.#p.signalCode !== null) return;
    const exited = new Promise((r) => this.#p.once('exit', r));
    this.#p.kill('SIGKILL');
    await exited;
  }
}
