// Signing authorities (public parts and key references only; private keys stay in key managers).
import type { Authority, AuthorityKind, AuthorityStatus, KeyType } from '../../core/authority.ts';
import { NotFoundError } from '../../core/errors.ts';
import type { AuthorityStore } from '../types.ts';
import type { SqlContext } from './dialect.ts';
import { bindBytes, fromBase64, fromFlag, toBase64, toBytes, toFlag } from './codec.ts';
import type { AuthorityRow } from './schema.ts';

function toRow(a: Authority): AuthorityRow {
  return {
    kind: a.kind,
    id: a.id,
    server_id: a.serverId,
    status: a.status,
    key_ref: a.keyRef,
    key_type: a.keyType,
    public_key_der: bindBytes(a.publicKeyDer),
    cert_chain: JSON.stringify(a.certChainDer.map(toBase64)),
    not_before: a.notBefore,
    not_after: a.notAfter,
    tainted: toFlag(a.tainted),
    created_at: a.createdAt,
  };
}

function fromRow(r: AuthorityRow): Authority {
  return {
    id: r.id,
    serverId: r.server_id,
    kind: r.kind as AuthorityKind,
    status: r.status as AuthorityStatus,
    keyRef: r.key_ref,
    keyType: r.key_type as KeyType,
    publicKeyDer: toBytes(r.public_key_der),
    certChainDer: (JSON.parse(r.cert_chain) as string[]).map(fromBase64),
    notBefore: Number(r.not_before),
    notAfter: Number(r.not_after),
    tainted: fromFlag(r.tainted),
    createdAt: Number(r.created_at),
  };
}

const notFound = (kind: string, id: string) =>
  new NotFoundError(`${kind} authority "${id}" not found`);

export function authorityStore(ctx: SqlContext): AuthorityStore {
  const { db } = ctx;
  const set = async (kind: AuthorityKind, id: string, values: Partial<AuthorityRow>) => {
    const r = await db
      .updateTable('authorities')
      .set(values)
      .where('kind', '=', kind)
      .where('id', '=', id)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) throw notFound(kind, id);
  };
  return {
    async insert(a) {
      await db.insertInto('authorities').values(toRow(a)).execute();
    },
    async list(filter) {
      let q = db.selectFrom('authorities').selectAll();
      if (filter.serverId !== undefined) q = q.where('server_id', '=', filter.serverId);
      if (filter.kind !== undefined) q = q.where('kind', '=', filter.kind);
      const rows = await q.orderBy('created_at').orderBy('kind').orderBy('id').execute();
      return rows.map(fromRow);
    },
    async get(kind, id) {
      const row = await db
        .selectFrom('authorities')
        .selectAll()
        .where('kind', '=', kind)
        .where('id', '=', id)
        .executeTakeFirst();
      return row === undefined ? null : fromRow(row);
    },
    setStatus: (kind, id, status) => set(kind, id, { status }),
    setTainted: (kind, id) => set(kind, id, { tainted: 1 }),
    async delete(kind, id) {
      const r = await db
        .deleteFrom('authorities')
        .where('kind', '=', kind)
        .where('id', '=', id)
        .executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) throw notFound(kind, id);
    },
  };
}
