// The error of an authority whose private key the key manager no longer has (restored from a
// backup without its keys, or a file deleted by hand): the server starts, not ready, and says so.
import type { Authority } from '../../core/authority.ts';
import { FailedPreconditionError } from '../../core/errors.ts';

/** What to do is in the message. */
export class MissingAuthorityKeyError extends FailedPreconditionError {
  constructor(a: Authority, location: string) {
    super(
      `the private key of the ${a.status} ${a.kind} authority ${a.id} is missing from ` +
        `${location}: restore that file from a backup (and restart the server), or replace the ` +
        `authority: \`tessera authority prepare --kind ${a.kind}\` then ` +
        `\`tessera authority activate --kind ${a.kind}\``,
    );
    this.name = 'MissingAuthorityKeyError';
  }
}
