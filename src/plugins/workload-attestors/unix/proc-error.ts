// Maps a failed read under /proc/<pid> to an error with a stable code. A process that exits while
// it is being attested makes its /proc entries vanish (ENOENT) or answer ESRCH; that is not a fault
// of the agent, so it gets `unavailable` and says so plainly.
import { FailedPreconditionError, TesseraError, UnavailableError } from '../../../core/errors.ts';

export function procFsError(e: unknown, what: string, pid: number, file: string): TesseraError {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ESRCH') {
    return new UnavailableError(`${what}: process ${pid} exited during attestation`, { cause: e });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new FailedPreconditionError(
      `${what}: permission denied reading ${file} (the agent needs to run as root or with CAP_SYS_PTRACE to read another user's process)`,
      { cause: e },
    );
  }
  return new TesseraError('internal', `${what}: cannot read ${file}: ${code ?? String(e)}`, {
    cause: e,
  });
}

/** A pid from the kernel is a positive integer; anything else is a programming error. */
export function checkPid(pid: number): void {
  if (!Number.isSafeInteger(pid) || pid <= 0) {
    throw new TypeError(`pid must be a positive integer, got ${String(pid)}`);
  }
}
