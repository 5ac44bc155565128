// SQL text the provider builds itself. Role names are generated (prefix + random hex) and the
// database comes from validated config; both are still quoted as identifiers everywhere.

/** A double-quoted identifier ("" inside doubled). */
export const quoteIdent = (s: string): string => `"${s.replace(/"/g, '""')}"`;

/** A single-quoted literal ('' inside doubled); only for generated, printable values. */
export const quoteLiteral = (s: string): string => `'${s.replace(/'/g, "''")}'`;

export const ROLE_PREFIX_PATTERN = /^[a-z_][a-z0-9_]{0,29}$/;
/** The random part of a role name: 20 lowercase hex digits. */
export const ROLE_SUFFIX_PATTERN = '[0-9a-f]{20}';

/** Whether `role` is a name this provider generates with `prefix` — the only ones it drops. */
export function isGeneratedRole(role: string, prefix: string): boolean {
  return (
    role.length <= 63 &&
    role.startsWith(prefix) &&
    new RegExp(`^${ROLE_SUFFIX_PATTERN}$`).test(role.slice(prefix.length))
  );
}

export const GRANT_PLACEHOLDERS = ['role', 'database'] as const;
const PLACEHOLDER = /\{\{\s*([a-z_]+)\s*\}\}/g;

/** Unknown placeholders in a grant statement; [] when fine. */
export function unknownPlaceholders(stmt: string): string[] {
  return [...stmt.matchAll(PLACEHOLDER)]
    .map((m) => m[1] ?? '')
    .filter((n) => !(GRANT_PLACEHOLDERS as readonly string[]).includes(n));
}

/** The statement with {{role}} and {{database}} replaced by quoted identifiers. */
export function renderGrant(stmt: string, v: { role: string; database: string }): string {
  return stmt.replace(PLACEHOLDER, (_, n: string) =>
    quoteIdent(n === 'role' ? v.role : v.database),
  );
}
