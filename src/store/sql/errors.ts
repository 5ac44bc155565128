// Driver errors become Tessera errors here, once for every aggregate: the dialect classifies
// (it knows its driver), this file picks the error class and the message.
import {
  AlreadyExistsError,
  TesseraError,
  UnavailableError,
  isTesseraError,
} from '../../core/errors.ts';
import type { SqlDialect } from './dialect.ts';

/** Constraint names are the same in both dialects (sqlite-errors.ts maps its columns to them). */
const uniqueMessages: Readonly<Record<string, string>> = {
  entries_pkey: 'an entry with this id already exists',
  entries_identity_uq: 'an entry with the same spiffe_id, parent_id and selectors already exists',
  join_tokens_pkey: 'a join token with this hash already exists',
  authorities_pkey: 'an authority with this kind and id already exists',
  nodes_pkey: 'a node with this SPIFFE ID already exists',
  bundles_pkey: 'a bundle for this trust domain already exists',
  sts_issuers_pkey: 'an STS issuer with this URL is already registered',
  trust_policies_pkey: 'a trust policy with this name already exists',
  federations_pkey: 'a federation relationship with this trust domain already exists',
  secret_keks_pkey: 'a key-encryption key with this id already exists',
  secret_keks_one_active: 'another key-encryption key is already active',
  server_workloads_pkey: 'a server workload with this name already exists',
  credential_providers_pkey: 'a credential provider with this name already exists',
  access_policies_pkey: 'an access policy with this name already exists',
};

export function toStoreError(e: unknown, dialect: SqlDialect): TesseraError {
  if (isTesseraError(e)) return e;
  const c = dialect.classifyError(e);
  switch (c.kind) {
    case 'unique':
      return new AlreadyExistsError(uniqueMessages[c.constraint] ?? 'the record already exists', {
        cause: e,
      });
    case 'unavailable':
      return new UnavailableError(`datastore unavailable: ${c.detail}`, { cause: e });
    case 'other':
      return new TesseraError('internal', `datastore error: ${messageOf(e)}`, { cause: e });
  }
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export const closedError = () => new UnavailableError('datastore unavailable: the store is closed');

/**
 * Wraps every method of an aggregate so that whatever it throws is mapped by toStoreError, and
 * calls after close() fail the same way in both dialects.
 */
export function guarded<T extends object>(
  aggregate: T,
  dialect: SqlDialect,
  isClosed: () => boolean,
): T {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(aggregate)) {
    if (typeof fn !== 'function') {
      out[name] = fn;
      continue;
    }
    out[name] = async (...args: unknown[]) => {
      if (isClosed()) throw closedError();
      try {
        return await (fn as (...a: unknown[]) => Promise<unknown>)(...args);
      } catch (e) {
        throw isClosed() ? closedError() : toStoreError(e, dialect);
      }
    };
  }
  return out as T;
}
