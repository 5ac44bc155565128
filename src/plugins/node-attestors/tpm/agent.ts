// Agent half of tpm: drives the TPM with tpm2-tools against a TCTI (`device:/dev/tpmrm0`,
// `swtpm:host=…,port=…`, `mssim:…`). Each attestation creates the EK from the standard RSA
// template, a fresh AK under it (restricted RSASSA-SHA256 signing key), reads the EK certificate
// from NV, and later activates the server's credential with the AK and EK (the EK's policy
// needs a PolicySecret session on the endorsement hierarchy). Without a resource manager
// (swtpm) transient objects stay loaded, so every step flushes them.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError, UnavailableError } from '../../../core/errors.ts';
import type { AgentNodeAttestor } from '../node-attestor.ts';
import { encodeTpmPayload } from './payload.ts';
import { TPM_TYPE } from './server.ts';

export interface TpmAgentOptions {
  readonly tcti: string;
  /** NV index of the RSA EK certificate (TCG: 0x01c00002). */
  readonly ekCertNvIndex: string;
  /** Where tpm2-tools live ("" = on PATH). */
  readonly toolsDir: string;
  readonly timeoutMs: number;
}

const MAX_CHALLENGE_BYTES = 4096;

export function tpmAgent(o: TpmAgentOptions): AgentNodeAttestor {
  let dir: string | null = null;
  const run = (tool: string, args: string[]) =>
    new Promise<void>((resolve, reject) => {
      execFile(
        path.join(o.toolsDir, tool),
        args,
        {
          cwd: dir ?? undefined,
          env: { ...process.env, TPM2TOOLS_TCTI: o.tcti },
          timeout: o.timeoutMs,
          maxBuffer: 1024 * 1024,
        },
        (err, _stdout, stderr) => {
          if (!err) return resolve();
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT')
            return reject(new InvalidArgumentError(`tpm: ${tool} not found (install tpm2-tools)`));
          const last = String(stderr).trim().split('\n').slice(-1)[0] ?? '';
          reject(new UnavailableError(`tpm: ${tool} failed: ${last.slice(0, 300)}`));
        },
      );
    });
  const flush = () => run('tpm2_flushcontext', ['-t']);
  const fresh = async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = await mkdtemp(path.join(os.tmpdir(), 'tessera-tpm-'));
    return dir;
  };
  return {
    type: TPM_TYPE,
    canReattest: true,
    async payload() {
      const d = await fresh();
      await flush();
      await run('tpm2_createek', ['-G', 'rsa', '-c', 'ek.ctx', '-u', 'ek.pub']);
      await flush();
      await run('tpm2_createak', [
        ...['-C', 'ek.ctx', '-c', 'ak.ctx', '-G', 'rsa', '-g', 'sha256', '-s', 'rsassa'],
        ...['-u', 'ak.pub', '-n', 'ak.name'],
      ]);
      await flush();
      try {
        await run('tpm2_nvread', [o.ekCertNvIndex, '-o', 'ek-cert.der']);
      } catch (e) {
        throw new InvalidArgumentError(
          `tpm: no EK certificate readable at NV index ${o.ekCertNvIndex}: ${(e as Error).message}`,
        );
      }
      const [ekCert, ekPub, akPub] = await Promise.all(
        ['ek-cert.der', 'ek.pub', 'ak.pub'].map((f) => readFile(path.join(d, f))),
      );
      return encodeTpmPayload({ ekCert: ekCert!, ekPub: ekPub!, akPub: akPub! });
    },
    async answer(challenge) {
      const d = dir;
      if (!d) throw new InvalidArgumentError('tpm: a challenge before the payload');
      // Untrusted bytes from the server: bounded, written to a file for the tool to parse.
      if (challenge.length > MAX_CHALLENGE_BYTES)
        throw new InvalidArgumentError('tpm: challenge too large');
      try {
        await writeFile(path.join(d, 'credential'), challenge);
        await flush();
        await run('tpm2_startauthsession', ['--policy-session', '-S', 'session.ctx']);
        try {
          await run('tpm2_policysecret', ['-S', 'session.ctx', '-c', 'e']);
          await run('tpm2_activatecredential', [
            ...['-c', 'ak.ctx', '-C', 'ek.ctx', '-i', 'credential', '-o', 'secret'],
            ...['-P', 'session:session.ctx'],
          ]);
        } finally {
          await run('tpm2_flushcontext', ['session.ctx']).catch(() => {});
          await flush().catch(() => {});
        }
        return await readFile(path.join(d, 'secret'));
      } finally {
        await rm(d, { recursive: true, force: true });
        dir = null;
      }
    },
  };
}
