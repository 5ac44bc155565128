// Registration entries: create, update, delete, get, list. Each change and its audit record
// commit in one transaction; the change feed carries it to every server's index.
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../core/clock.ts';
import { type Entry, type EntryInput, validateEntryInput } from '../../core/entry.ts';
import {
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
  isTesseraError,
} from '../../core/errors.ts';
import { parseSelector } from '../../core/selector.ts';
import type { TrustDomain } from '../../core/spiffe-id.ts';
import type { EntryFilter, Page, Store } from '../../store/types.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../../core/caller.ts';
import { checkParent, type ParentKind } from './parent-check.ts';
import { compileEntryCondition } from '../posture/entry-condition.ts';

/** The entry's fields, its condition compiled (errors name the problem) when it has one. */
function validFields(input: EntryInput, td: TrustDomain) {
  const fields = validateEntryInput(input, td);
  if (fields.condition !== undefined) compileEntryCondition(fields.condition);
  return fields;
}

/** What an entry's deletion ends (server/broker/revocation.ts). */
export interface EntryRevocation {
  revoke(scope: { client: string }, reason: string): Promise<number>;
  /** Agents drop cached credentials; no lease ends. */
  purgeCaches(): Promise<void>;
}

export const MAX_BATCH = 500;

export type BatchResult<T> = { ok: true; value: T } | { ok: false; code: string; message: string };

export const entryFields = [
  'spiffe_id',
  'parent_id',
  'selectors',
  'x509_svid_ttl',
  'jwt_svid_ttl',
  'dns_names',
  'federates_with',
  'admin',
  'downstream',
  'expires_at',
  'hint',
  'condition',
  'disclose',
] as const;
export type EntryField = (typeof entryFields)[number];

export interface EntryListQuery {
  spiffeId?: string;
  parentId?: string;
  selector?: string;
  pageSize?: number;
  pageToken?: string;
}

export class EntryService {
  readonly #store: Pick<Store, 'transaction' | 'entries' | 'nodes' | 'joinTokens'>;
  readonly #auditor: Auditor;
  readonly #clock: Clock;
  readonly #td: TrustDomain;
  readonly #revocation: EntryRevocation | undefined;

  constructor(o: {
    store: Pick<Store, 'transaction' | 'entries' | 'nodes' | 'joinTokens'>;
    auditor: Auditor;
    clock: Clock;
    trustDomain: TrustDomain;
    revocation?: EntryRevocation;
  }) {
    this.#revocation = o.revocation;
    this.#store = o.store;
    this.#auditor = o.auditor;
    this.#clock = o.clock;
    this.#td = o.trustDomain;
  }

  async batchCreate(
    ctx: RequestContext,
    inputs: readonly EntryInput[],
  ): Promise<BatchResult<Entry>[]> {
    checkBatch(inputs.length);
    const out: BatchResult<Entry>[] = [];
    for (const input of inputs)
      out.push(await this.#each(ctx, 'entry.create', '', () => this.#create(ctx, input)));
    return out;
  }

  async batchUpdate(
    ctx: RequestContext,
    updates: readonly { id: string; input: EntryInput; mask: readonly string[] }[],
  ): Promise<BatchResult<Entry>[]> {
    checkBatch(updates.length);
    const out: BatchResult<Entry>[] = [];
    for (const u of updates)
      out.push(await this.#each(ctx, 'entry.update', u.id, () => this.#update(ctx, u)));
    return out;
  }

  async batchDelete(ctx: RequestContext, ids: readonly string[]): Promise<BatchResult<string>[]> {
    checkBatch(ids.length);
    const out: BatchResult<string>[] = [];
    for (const id of ids) {
      out.push(
        await this.#each(ctx, 'entry.delete', id, async () => {
          checkId(id);
          const gone = await this.#store.transaction(async (tx) => {
            const deleted = await tx.entries.delete(id);
            await this.#auditor.record(tx, ctx, {
              action: 'entry.delete',
              target: id,
              outcome: 'success',
              details: { spiffeId: deleted.spiffeId },
            });
            return deleted;
          });
          await this.#afterDelete(gone.spiffeId);
          return id;
        }),
      );
    }
    return out;
  }

  /**
   * A deleted entry's workloads lose their credentials: agents drop cached ones at once. Leases
   * of its SPIFFE ID end too, unless another entry still names that ID (the same client, still
   * registered — e.g. on another node).
   */
  async #afterDelete(spiffeId: string): Promise<void> {
    if (!this.#revocation) return;
    try {
      const others = await this.#store.entries.list({ spiffeId }, 1, '');
      if (others.items.length > 0) await this.#revocation.purgeCaches();
      else await this.#revocation.revoke({ client: spiffeId }, 'entry deleted');
    } catch (e) {
      throw new UnavailableError(
        `entry deleted, but ending the credentials of ${spiffeId} failed: ${e instanceof Error ? e.message : String(e)}`,
        { cause: e },
      );
    }
  }

  async get(id: string): Promise<Entry> {
    checkId(id);
    const e = await this.#store.entries.get(id);
    if (!e) throw new NotFoundError(`entry ${id} not found`);
    return e;
  }

  async list(q: EntryListQuery): Promise<Page<Entry>> {
    const filter: EntryFilter = {};
    if (q.spiffeId) filter.spiffeId = q.spiffeId;
    if (q.parentId) filter.parentId = q.parentId;
    if (q.selector) filter.selector = parseSelector(q.selector);
    const size = q.pageSize || 100;
    if (!Number.isInteger(size) || size < 1 || size > 1000) {
      throw new InvalidArgumentError('page_size: must be between 1 and 1000');
    }
    return this.#store.entries.list(filter, size, q.pageToken ?? '');
  }

  /** What `parentId` names (an agent, a pending join token's agent, a node alias...). */
  checkParent(parentId: string): Promise<ParentKind> {
    return checkParent(this.#store, this.#td, parentId, this.#clock.now());
  }

  async #create(ctx: RequestContext, input: EntryInput): Promise<Entry> {
    const fields = validFields(input, this.#td);
    const entry: Entry = { ...fields, id: randomUUID(), revision: 1, createdAt: this.#clock.now() };
    return this.#store.transaction(async (tx) => {
      const created = await tx.entries.create(entry);
      await this.#auditor.record(tx, ctx, {
        action: 'entry.create',
        target: created.id,
        outcome: 'success',
        details: { spiffeId: created.spiffeId, parentId: created.parentId },
      });
      return created;
    });
  }

  async #update(
    ctx: RequestContext,
    u: { id: string; input: EntryInput; mask: readonly string[] },
  ): Promise<Entry> {
    checkId(u.id);
    for (const f of u.mask) {
      if (!(entryFields as readonly string[]).includes(f)) {
        throw new InvalidArgumentError(`mask: unknown field "${f.slice(0, 64)}"`);
      }
    }
    return this.#store.transaction(async (tx) => {
      const current = await tx.entries.get(u.id);
      if (!current) throw new NotFoundError(`entry ${u.id} not found`);
      const merged = mergeForUpdate(current, u.input, u.mask as readonly EntryField[]);
      const fields = validFields(merged, this.#td);
      const updated = await tx.entries.update({
        ...fields,
        id: current.id,
        createdAt: current.createdAt,
      });
      await this.#auditor.record(tx, ctx, {
        action: 'entry.update',
        target: u.id,
        outcome: 'success',
        details: { fields: u.mask.length > 0 ? [...u.mask] : 'all', revision: updated.revision },
      });
      return updated;
    });
  }

  /** Runs one batch item; a failure becomes its result (and an audit record), not the batch's. */
  async #each<T>(
    ctx: RequestContext,
    action: string,
    target: string,
    fn: () => Promise<T>,
  ): Promise<BatchResult<T>> {
    try {
      return { ok: true, value: await fn() };
    } catch (e) {
      if (!isTesseraError(e) || e.code === 'unavailable' || e.code === 'internal') throw e;
      await this.#auditor.log(ctx, {
        action,
        target,
        outcome: 'error',
        details: { code: e.code, reason: e.message },
      });
      return { ok: false, code: e.code, message: e.message };
    }
  }
}

function mergeForUpdate(
  current: Entry,
  input: EntryInput,
  mask: readonly EntryField[],
): EntryInput {
  const all = mask.length === 0;
  const pick = <K extends keyof EntryInput>(
    field: EntryField,
    key: K,
    fallback: EntryInput[K],
  ): EntryInput[K] => (all || mask.includes(field) ? input[key] : fallback);
  return {
    spiffeId: pick('spiffe_id', 'spiffeId', current.spiffeId) ?? '',
    parentId: pick('parent_id', 'parentId', current.parentId) ?? '',
    selectors:
      pick(
        'selectors',
        'selectors',
        current.selectors.map((s) => `${s.type}:${s.value}`),
      ) ?? [],
    x509SvidTtl: pick('x509_svid_ttl', 'x509SvidTtl', current.x509SvidTtl) ?? 0,
    jwtSvidTtl: pick('jwt_svid_ttl', 'jwtSvidTtl', current.jwtSvidTtl) ?? 0,
    dnsNames: pick('dns_names', 'dnsNames', current.dnsNames) ?? [],
    federatesWith: pick('federates_with', 'federatesWith', current.federatesWith) ?? [],
    admin: pick('admin', 'admin', current.admin) ?? false,
    downstream: pick('downstream', 'downstream', current.downstream) ?? false,
    expiresAt: pick('expires_at', 'expiresAt', current.expiresAt) ?? null,
    hint: pick('hint', 'hint', current.hint) ?? '',
    condition: pick('condition', 'condition', current.condition ?? '') ?? '',
    disclose: pick('disclose', 'disclose', current.disclose ?? []) ?? [],
  };
}

function checkBatch(n: number): void {
  if (n === 0) throw new InvalidArgumentError('the batch is empty');
  if (n > MAX_BATCH) throw new InvalidArgumentError(`at most ${MAX_BATCH} items per batch`);
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function checkId(id: string): void {
  if (!UUID_RE.test(id))
    throw new InvalidArgumentError(`invalid entry id "${String(id).slice(0, 64)}"`);
}
