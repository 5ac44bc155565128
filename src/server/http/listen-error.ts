// Why a server listener could not open, naming the listener and the flag that sets it: the
// operator reads one line and knows what to change.
import { FailedPreconditionError, UnavailableError } from '../../core/errors.ts';

export type ListenerName = 'api' | 'admin' | 'health' | 'public';

const described: Readonly<Record<ListenerName, { what: string; flag: string }>> = {
  api: { what: 'API listener', flag: '--listen' },
  admin: { what: 'admin socket', flag: '--admin-socket' },
  health: { what: 'health listener', flag: '--health-listen' },
  public: { what: 'public listener', flag: '--public-listen' },
};

/** A listener that could not bind (address in use, no permission, bad address, ...). */
export class ListenError extends UnavailableError {
  readonly listener: ListenerName;
  constructor(listener: ListenerName, address: string, cause: unknown) {
    const { what, flag } = described[listener];
    super(`cannot open the ${what} on ${address} (${flag}): ${reason(cause)}`, { cause });
    this.name = 'ListenError';
    this.listener = listener;
  }
}

/** A server is already serving on the admin socket path: it is never taken over. */
export class AdminSocketInUseError extends FailedPreconditionError {
  constructor(socketPath: string) {
    super(
      `the admin socket ${socketPath} is in use by a running server: stop that server, or give ` +
        'this one another --admin-socket',
    );
    this.name = 'AdminSocketInUseError';
  }
}

function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const codes: Record<string, string> = {
    EADDRINUSE: 'the address is already in use',
    EACCES: 'permission denied',
    EADDRNOTAVAIL: 'the address is not available on this host',
  };
  const known = err?.code ? codes[err.code] : undefined;
  if (known) return `${known} (${err.code})`;
  return err instanceof Error ? err.message : String(e);
}
