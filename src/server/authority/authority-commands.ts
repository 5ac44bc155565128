// Which authority a forced-rotation command (`tessera authority activate/taint/revoke`) acts on,
// and whether it may: an id names one (untrusted, from the caller: checked for shape), no id means
// the one the command's step applies to. A refusal names the authority and the step before it.
import type { Authority, AuthorityKind, AuthorityStatus } from '../../core/authority.ts';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../../core/errors.ts';

export function byStatus(
  all: readonly Authority[],
  kind: AuthorityKind,
  status: AuthorityStatus,
): Authority | undefined {
  return all.find((a) => a.kind === kind && a.status === status);
}

export function byId(
  all: readonly Authority[],
  kind: AuthorityKind,
  id: string,
): Authority | undefined {
  if (!/^[0-9a-f]{32}$/.test(id))
    throw new InvalidArgumentError(`invalid authority id "${id.slice(0, 64)}"`);
  return all.find((a) => a.kind === kind && a.id === id);
}

export function toActivate(all: readonly Authority[], kind: AuthorityKind, id: string): Authority {
  const prepared = id ? byId(all, kind, id) : byStatus(all, kind, 'prepared');
  if (!prepared || prepared.status !== 'prepared') {
    throw new FailedPreconditionError(
      `no prepared ${kind} authority${id ? ` with id ${id}` : ''}: run prepare first`,
    );
  }
  return prepared;
}

export function toTaint(all: readonly Authority[], kind: AuthorityKind, id: string): Authority {
  const a = id ? byId(all, kind, id) : byStatus(all, kind, 'old');
  if (!a) throw new NotFoundError(`no old ${kind} authority${id ? ` with id ${id}` : ''} to taint`);
  if (a.status !== 'old') {
    throw new FailedPreconditionError(
      `only an old ${kind} authority can be tainted; ${a.id} is ${a.status}: activate a new one first`,
    );
  }
  if (a.tainted) throw new FailedPreconditionError(`${kind} authority ${a.id} is already tainted`);
  return a;
}

export function toRevoke(all: readonly Authority[], kind: AuthorityKind, id: string): Authority {
  const a = id ? byId(all, kind, id) : all.find((x) => x.kind === kind && x.tainted);
  if (!a)
    throw new NotFoundError(`no tainted ${kind} authority${id ? ` with id ${id}` : ''} to revoke`);
  if (!a.tainted)
    throw new FailedPreconditionError(
      `${kind} authority ${a.id} must be tainted before it is revoked`,
    );
  return a;
}
