// Wire messages → the CLI's stable JSON shapes and table rows. Keeping both here means the JSON
// documented in docs/cli.md has exactly one definition.
import { X509Certificate } from 'node:crypto';
import { formatDuration } from '../core/duration.ts';
import { jwsAlgForKey, publicJwk } from '../crypto/jwk.ts';
import { parseCertificate, subjectAltNames } from '../crypto/x509/certificate.ts';
import { derToPem } from '../crypto/x509/pem.ts';
import type {
  JwtBundleSet,
  JwtSvid,
  X509BundleSet,
  X509Context,
  X509Svid,
} from '../client/workload/index.ts';
import type { AuditRecord } from '../client/api/audit.ts';
import type { AuthorityInfo } from '../client/api/authority.ts';
import type { AttestedNode, Bundle as WireBundle, Entry, Selector } from '../client/api/types.ts';
import { isoFromMillis, isoFromSeconds, orDash } from './output.ts';

const selectorText = (s: Selector): string => `${s.type}:${s.value}`;
const ttlText = (s: number): string => (s === 0 ? 'default' : formatDuration(s * 1000));

export function entryJson(e: Entry) {
  return {
    id: e.id,
    spiffeId: e.spiffeId,
    parentId: e.parentId,
    selectors: e.selectors.map(selectorText),
    x509SvidTtl: e.x509SvidTtl,
    jwtSvidTtl: e.jwtSvidTtl,
    dnsNames: e.dnsNames,
    federatesWith: e.federatesWith,
    admin: e.admin,
    downstream: e.downstream,
    expiresAt: isoFromSeconds(e.expiresAt),
    hint: e.hint,
    ...(e.condition === '' ? {} : { condition: e.condition }),
    ...(e.disclose.length === 0 ? {} : { disclose: [...e.disclose] }),
    revision: Number(e.revision),
    createdAt: isoFromSeconds(e.createdAt),
  };
}

export function entryFields(e: Entry): [string, string][] {
  return [
    ['Entry ID', e.id],
    ['SPIFFE ID', e.spiffeId],
    ['Parent ID', e.parentId],
    ['Selectors', e.selectors.map(selectorText).join(', ')],
    ['X509-SVID TTL', ttlText(e.x509SvidTtl)],
    ['JWT-SVID TTL', ttlText(e.jwtSvidTtl)],
    ['DNS names', e.dnsNames.join(', ')],
    ['Federates with', e.federatesWith.join(', ')],
    ['Admin', String(e.admin)],
    ['Downstream', String(e.downstream)],
    ['Expires at', isoFromSeconds(e.expiresAt) ?? 'never'],
    ['Hint', e.hint],
    ...(e.condition === '' ? [] : [['Condition', e.condition] as [string, string]]),
    ...(e.disclose.length === 0 ? [] : [['Disclose', e.disclose.join(',')] as [string, string]]),
    ['Revision', String(e.revision)],
    ['Created at', orDash(isoFromSeconds(e.createdAt))],
  ];
}

export const entryHeaders = ['ENTRY ID', 'SPIFFE ID', 'PARENT ID', 'SELECTORS'];
export const entryRow = (e: Entry): string[] => [
  e.id,
  e.spiffeId,
  e.parentId,
  e.selectors.map(selectorText).join(','),
];

export function agentJson(a: AttestedNode) {
  return {
    spiffeId: a.spiffeId,
    attestationType: a.attestationType,
    serialNumber: a.serialNumber,
    expiresAt: isoFromSeconds(a.expiresAt),
    selectors: a.selectors.map(selectorText),
    banned: a.banned,
    canReattest: a.canReattest,
    createdAt: isoFromSeconds(a.createdAt),
    updatedAt: isoFromSeconds(a.updatedAt),
  };
}

export const agentHeaders = ['SPIFFE ID', 'ATTESTATION', 'EXPIRES AT', 'BANNED'];
export const agentRow = (a: AttestedNode): string[] => [
  a.spiffeId,
  a.attestationType,
  orDash(isoFromSeconds(a.expiresAt)),
  String(a.banned),
];

export function agentFields(a: AttestedNode): [string, string][] {
  const j = agentJson(a);
  return [
    ['SPIFFE ID', j.spiffeId],
    ['Attestation type', j.attestationType],
    ['Serial number', j.serialNumber],
    ['Expires at', orDash(j.expiresAt)],
    ['Selectors', j.selectors.join(', ')],
    ['Banned', String(j.banned)],
    ['Can reattest', String(j.canReattest)],
    ['Created at', orDash(j.createdAt)],
    ['Updated at', orDash(j.updatedAt)],
  ];
}

export function authorityJson(a: AuthorityInfo) {
  return {
    id: a.id,
    kind: a.kind,
    status: a.status,
    keyType: a.keyType,
    notBefore: isoFromSeconds(a.notBefore),
    notAfter: isoFromSeconds(a.notAfter),
    tainted: a.tainted,
    serverId: a.serverId,
    certificatePem: a.certificate.length > 0 ? derToPem(a.certificate) : null,
  };
}

export const authorityHeaders = ['KIND', 'STATUS', 'ID', 'KEY TYPE', 'NOT AFTER', 'TAINTED'];
export const authorityRow = (a: AuthorityInfo): string[] => [
  a.kind,
  a.status,
  a.id,
  a.keyType,
  orDash(isoFromSeconds(a.notAfter)),
  String(a.tainted),
];

export function auditJson(r: AuditRecord) {
  return {
    seq: Number(r.seq),
    time: isoFromMillis(r.time),
    actor: r.actor,
    action: r.action,
    target: r.target,
    outcome: r.outcome,
    correlationId: r.correlationId,
    details: r.details ?? {},
    prevHash: r.prevHash,
    hash: r.hash,
  };
}

export const auditHeaders = ['SEQ', 'TIME', 'ACTOR', 'ACTION', 'TARGET', 'OUTCOME'];
export const auditRow = (r: AuditRecord): string[] => [
  String(r.seq),
  isoFromMillis(r.time),
  r.actor,
  r.action,
  r.target,
  r.outcome,
];

export function bundleJson(w: WireBundle) {
  return {
    trustDomain: w.trustDomain,
    sequence: Number(w.sequence),
    refreshHint: Number(w.refreshHint),
    x509Authorities: w.x509Authorities.map((der, i) => {
      const cert = new X509Certificate(der);
      return {
        subject: cert.subject,
        notAfter: cert.validToDate.toISOString(),
        tainted: w.x509Tainted[i] ?? false,
        certificatePem: derToPem(der),
      };
    }),
    jwtAuthorities: w.jwtAuthorities.map((k) => ({
      kid: k.kid,
      expiresAt: isoFromSeconds(k.expiresAt),
      tainted: k.tainted,
      publicKeyPem: derToPem(k.publicKey, 'PUBLIC KEY'),
    })),
  };
}

// Workload API views (svid fetch|watch, jwt fetch|validate, bundle fetch).

/** One X509-SVID as `svid fetch|watch` show it; never the private key. */
export function x509SvidJson(s: X509Svid) {
  const leafDer = s.chainDer[0];
  const leaf = s.certificates[0];
  return {
    spiffeId: s.spiffeId,
    hint: s.hint,
    expiresAt: new Date(s.expiresAt).toISOString(),
    serialNumber: leaf?.serialNumber ?? '',
    dnsNames: leafDer ? subjectAltNames(parseCertificate(leafDer)).dnsNames : [],
  };
}

export const x509SvidHeaders = ['SPIFFE ID', 'HINT', 'EXPIRES AT', 'SERIAL', 'DNS NAMES'];
export function x509SvidRow(s: X509Svid): string[] {
  const j = x509SvidJson(s);
  return [j.spiffeId, j.hint, j.expiresAt, j.serialNumber, j.dnsNames.join(',')];
}

/** The trust domains of an X509 context, own (an SVID's) before federated, each sorted. */
export function x509BundlesJson(ctx: X509Context) {
  const own = new Set(ctx.svids.map((s) => s.id.trustDomain.name));
  return [...ctx.bundles]
    .map(([trustDomain, cas]) => ({
      trustDomain,
      federated: !own.has(trustDomain),
      authorities: cas.length,
    }))
    .sort(
      (a, b) =>
        Number(a.federated) - Number(b.federated) || a.trustDomain.localeCompare(b.trustDomain),
    );
}

export const x509BundleHeaders = ['TRUST DOMAIN', 'KIND', 'AUTHORITIES'];
export const x509BundleRow = (b: ReturnType<typeof x509BundlesJson>[number]): string[] => [
  b.trustDomain,
  b.federated ? 'federated' : 'own',
  String(b.authorities),
];

export function jwtSvidJson(s: JwtSvid) {
  return {
    spiffeId: s.spiffeId,
    token: s.token,
    expiresAt: new Date(s.expiresAt).toISOString(),
    hint: s.hint,
  };
}

/** A JWK set per trust domain: the plain RFC 7517 form (kid and alg, no SPIFFE `use`). */
export function jwtBundlesJson(set: JwtBundleSet): Record<string, { keys: object[] }> {
  const out: Record<string, { keys: object[] }> = {};
  for (const td of [...set.keys()].sort()) {
    const keys: object[] = [];
    for (const [kid, key] of set.get(td) ?? []) {
      const alg = jwsAlgForKey(key);
      keys.push({ ...publicJwk(key), kid, ...(alg ? { alg } : {}) });
    }
    out[td] = { keys };
  }
  return out;
}

/** CA certificates (PEM) per trust domain, trust domains sorted. */
export function x509BundleSetJson(set: X509BundleSet): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const td of [...set.keys()].sort()) out[td] = (set.get(td) ?? []).map((d) => derToPem(d));
  return out;
}
