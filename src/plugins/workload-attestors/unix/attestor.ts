// unix: kernel facts about the process — effective uid/gid and their names, supplementary groups,
// and the executable's path and sha256. Selector names follow SPIRE's unix attestor.
import { readFileSync, readlinkSync } from 'node:fs';
import { z } from 'zod';
import type { Selector } from '../../../core/selector.ts';
import type { WorkloadAttestor } from '../workload-attestor.ts';
import { IdNameFile } from './account-db.ts';
import { ExecutableHasher } from './exe-hash.ts';
import { checkPid, procFsError } from './proc-error.ts';
import { parseProcStatus } from './proc-status.ts';
import { validSelectors } from './selectors.ts';

export const UNIX_TYPE = 'unix';

export const unixConfigSchema = z.strictObject({
  /** Emit unix:path (and unix:sha256); needs the agent to be able to read /proc/<pid>/exe. */
  discover_workload_path: z.boolean().default(true),
  /** Emit unix:sha256 of the executable (only with discover_workload_path). */
  hash_executable: z.boolean().default(true),
  /** Executables larger than this are not hashed: attestation fails with a clear error. */
  max_binary_bytes: z
    .number()
    .int()
    .min(1)
    .max(Number.MAX_SAFE_INTEGER)
    .default(256 * 1024 * 1024),
  passwd_path: z.string().min(1).default('/etc/passwd'),
  /** How often passwd/group are checked for changes (milliseconds; attestation runs per call). */
  account_recheck_ms: z.number().int().min(0).max(3_600_000).default(1000),
  group_path: z.string().min(1).default('/etc/group'),
});

export type UnixConfig = z.output<typeof unixConfigSchema>;

export interface UnixAttestorDeps {
  /** Root of the proc filesystem; tests point it at a fake tree. Default /proc. */
  readonly procRoot?: string;
}

export function createUnixAttestor(config: UnixConfig, deps: UnixAttestorDeps): WorkloadAttestor {
  const procRoot = deps.procRoot ?? '/proc';
  const users = new IdNameFile(config.passwd_path, config.account_recheck_ms);
  const groups = new IdNameFile(config.group_path, config.account_recheck_ms);
  const hasher = new ExecutableHasher(config.max_binary_bytes);

  return {
    type: UNIX_TYPE,
    async attest(pid, signal) {
      checkPid(pid);
      signal.throwIfAborted();
      const statusFile = `${procRoot}/${pid}/status`;
      let status: string;
      try {
        // procfs reads are in-memory: synchronous calls cost microseconds, a thread-pool round
        // trip costs far more, and this runs on every Workload API call.
        status = readFileSync(statusFile, 'utf8');
      } catch (e) {
        signal.throwIfAborted();
        throw procFsError(e, UNIX_TYPE, pid, statusFile);
      }
      const creds = parseProcStatus(status, UNIX_TYPE);
      const [userNames, groupNames] = await Promise.all([users.names(), groups.names()]);

      const out: Selector[] = [];
      const add = (value: string) => out.push({ type: UNIX_TYPE, value });
      add(`uid:${creds.uid}`);
      const user = userNames.get(creds.uid);
      if (user !== undefined) add(`user:${user}`);
      add(`gid:${creds.gid}`);
      const group = groupNames.get(creds.gid);
      if (group !== undefined) add(`group:${group}`);
      for (const g of creds.groups) {
        add(`supplementary_gid:${g}`);
        const name = groupNames.get(g);
        if (name !== undefined) add(`supplementary_group:${name}`);
      }

      if (config.discover_workload_path) {
        const exeLink = `${procRoot}/${pid}/exe`;
        let exePath: string;
        try {
          exePath = readlinkSync(exeLink);
        } catch (e) {
          throw procFsError(e, UNIX_TYPE, pid, exeLink);
        }
        // Verbatim from the kernel: a deleted executable reads "<path> (deleted)", which matches
        // no entry written for "<path>" — the safe outcome.
        add(`path:${exePath}`);
        if (config.hash_executable) add(`sha256:${await hasher.hash(exeLink, pid, signal)}`);
      }
      signal.throwIfAborted();
      return validSelectors(out);
    },
  };
}
