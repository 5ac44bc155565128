// The claims template of signed-jwt: plain JSON whose strings may hold placeholders, replaced
// by text substitution only (no expressions, no code). A string that is exactly `{{now}}` or
// `{{server.port}}` becomes a number.
import type { AccessClient, ServerWorkload } from '../../../core/access.ts';

export const PLACEHOLDERS = [
  'client.spiffe_id',
  'client.trust_domain',
  'client.path',
  'server.name',
  'server.host',
  'server.port',
  'policy',
  'now',
] as const;

/** Added by the provider itself; a template may not set them. */
export const RESERVED_CLAIMS = ['iat', 'exp', 'jti'];

const NUMERIC = new Set(['now', 'server.port']);
const PLACEHOLDER = /\{\{\s*([a-z_.]+)\s*\}\}/g;
const MAX_DEPTH = 5;
export const MAX_TEMPLATE_BYTES = 8192;

export type TemplateValue =
  string | number | boolean | null | TemplateValue[] | { [k: string]: TemplateValue };

/** Problems of a template, as "path: message" strings; [] when it is fine. */
export function templateProblems(claims: Record<string, unknown>): string[] {
  const out: string[] = [];
  if (JSON.stringify(claims).length > MAX_TEMPLATE_BYTES) {
    out.push(`claims: larger than ${MAX_TEMPLATE_BYTES} bytes`);
  }
  for (const r of RESERVED_CLAIMS) {
    if (Object.hasOwn(claims, r)) out.push(`claims.${r}: set by the provider (from ttl)`);
  }
  const walk = (v: unknown, path: string, depth: number): void => {
    if (depth > MAX_DEPTH) {
      out.push(`${path}: nested deeper than ${MAX_DEPTH}`);
      return;
    }
    if (typeof v === 'string') {
      for (const m of v.matchAll(PLACEHOLDER)) {
        if (!(PLACEHOLDERS as readonly string[]).includes(m[1] ?? '')) {
          out.push(`${path}: unknown placeholder {{${m[1]}}} (known: ${PLACEHOLDERS.join(', ')})`);
        }
      }
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${path}.${i}`, depth + 1));
    } else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) walk(x, `${path}.${k}`, depth + 1);
    } else if (!(typeof v === 'number' || typeof v === 'boolean' || v === null)) {
      out.push(`${path}: not a JSON value`);
    }
  };
  for (const [k, v] of Object.entries(claims)) walk(v, `claims.${k}`, 1);
  return out;
}

export interface TemplateContext {
  readonly client: AccessClient;
  readonly server: ServerWorkload;
  readonly policy: string;
  /** Epoch seconds. */
  readonly now: number;
}

function values(c: TemplateContext): Record<string, string | number> {
  const id = c.client.spiffeId;
  const rest = id.startsWith('spiffe://') ? id.slice('spiffe://'.length) : id;
  const slash = rest.indexOf('/');
  return {
    'client.spiffe_id': id,
    'client.trust_domain': slash < 0 ? rest : rest.slice(0, slash),
    'client.path': slash < 0 ? '' : rest.slice(slash),
    'server.name': c.server.name,
    'server.host': c.server.host,
    'server.port': c.server.port,
    policy: c.policy,
    now: c.now,
  };
}

/** Renders a template already checked by templateProblems. */
export function renderClaims(
  claims: Readonly<Record<string, unknown>>,
  c: TemplateContext,
): Record<string, unknown> {
  const vals = values(c);
  const render = (v: unknown): unknown => {
    if (typeof v === 'string') {
      const whole = /^\{\{\s*([a-z_.]+)\s*\}\}$/.exec(v);
      if (whole && NUMERIC.has(whole[1] ?? '')) return vals[whole[1] ?? ''];
      return v.replace(PLACEHOLDER, (_, name: string) => String(vals[name] ?? ''));
    }
    if (Array.isArray(v)) return v.map(render);
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, render(x)]));
    }
    return v;
  };
  return render(claims) as Record<string, unknown>;
}
