// Compiles config from its three sources — YAML file, environment, flags (later wins) — into a
// frozen, fully defaulted object. Only the composition root calls this.
import { InvalidArgumentError } from '../../../core/errors.ts';
import { validateFederationInput } from '../../../core/federation.ts';
import { serverConfigSchema, type ServerConfigParsed } from './schema.ts';

export interface ServerConfig extends Omit<ServerConfigParsed, 'authority_publish_delay'> {
  readonly admin_socket: string;
  /** In ms: 2 s by default with PostgreSQL (other servers may share it), 0 with SQLite. */
  readonly authority_publish_delay: number;
  readonly datastore:
    { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string; poolSize: number };
}

/** Environment variables that override top-level keys. */
export const serverEnv: Record<string, string> = {
  TESSERA_TRUST_DOMAIN: 'trust_domain',
  TESSERA_DATA_DIR: 'data_dir',
  TESSERA_LISTEN: 'listen',
  TESSERA_HEALTH_LISTEN: 'health_listen',
  TESSERA_ADMIN_SOCKET: 'admin_socket',
  TESSERA_DATASTORE_URL: 'datastore_url',
  TESSERA_LOG_LEVEL: 'log_level',
  TESSERA_LOG_FORMAT: 'log_format',
};

export function compileServerConfig(
  file: Record<string, unknown>,
  env: Record<string, string | undefined>,
  flags: Record<string, unknown>,
  defaults: { dataDir: string },
): ServerConfig {
  const merged: Record<string, unknown> = { data_dir: defaults.dataDir, ...file };
  for (const [name, key] of Object.entries(serverEnv)) {
    const v = env[name];
    if (v !== undefined && v !== '') merged[key] = v;
  }
  for (const [k, v] of Object.entries(flags)) {
    if (v === undefined) continue;
    // "jwt.issuer" sets a nested key without dropping the file's other keys of that object.
    const dot = k.indexOf('.');
    if (dot < 0) {
      merged[k] = v;
      continue;
    }
    const outer = k.slice(0, dot);
    const prev = merged[outer];
    merged[outer] = {
      ...(prev && typeof prev === 'object' ? (prev as Record<string, unknown>) : {}),
      [k.slice(dot + 1)]: v,
    };
  }
  // The token exchange is on whenever the public listener is: issuers and trust policies may
  // come from the admin API alone, and the discovery document advertises /token, /introspect
  // and /revoke, which must then answer. The `sts` block only tunes it.
  if (typeof merged.public_listen === 'string' && merged.public_listen && merged.sts == null)
    merged.sts = {};
  const result = serverConfigSchema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue?.path.join('.') || '(root)';
    const message =
      path === 'trust_domain' && merged.trust_domain === undefined
        ? 'required: pass --trust-domain, set TESSERA_TRUST_DOMAIN, or set trust_domain in the config file'
        : issue?.code === 'unrecognized_keys'
          ? `unknown key ${issue.keys.map((k) => `"${k}"`).join(', ')}`
          : (issue?.message ?? 'invalid');
    throw new InvalidArgumentError(`config: ${path}: ${message}`);
  }
  const c = result.data;
  if (!c.public_cert_file !== !c.public_key_file) {
    throw new InvalidArgumentError(
      'config: public_cert_file: public_cert_file and public_key_file go together (both or neither)',
    );
  }
  if (c.public_listen) {
    if (!c.jwt.issuer) {
      if (/:0$/.test(c.public_listen)) {
        throw new InvalidArgumentError(
          'config: jwt.issuer: required when public_listen uses port 0 (the default issuer is the listener URL)',
        );
      }
      const scheme = c.public_cert_file ? 'https' : 'http';
      c.jwt = { ...c.jwt, issuer: `${scheme}://${c.public_listen}` };
    }
    const u = new URL(c.jwt.issuer);
    if (u.search || u.hash || u.username || u.password) {
      throw new InvalidArgumentError(
        'config: jwt.issuer: the OIDC issuer must not have a query, fragment or user info',
      );
    }
  }
  if (c.sts && !c.public_listen) {
    throw new InvalidArgumentError(
      'config: sts: the token exchange is served on the public listener: set public_listen',
    );
  }
  checkFederation(c);
  const names = new Set<string>();
  c.audit.sinks.forEach((sink, i) => {
    if (names.has(sink.name))
      throw new InvalidArgumentError(
        `config: audit.sinks[${i}].name: "${sink.name}" is used twice (it names the sink's cursor)`,
      );
    names.add(sink.name);
  });
  const sep = c.data_dir.endsWith('/') ? '' : '/';
  const compiled: ServerConfig = {
    ...c,
    admin_socket: c.admin_socket || `${c.data_dir}${sep}admin.sock`,
    authority_publish_delay: c.authority_publish_delay ?? (c.datastore_url ? 2000 : 0),
    datastore: c.datastore_url
      ? { kind: 'postgres', url: c.datastore_url, poolSize: c.datastore_pool_size }
      : { kind: 'sqlite', path: `${c.data_dir}${sep}datastore.sqlite3` },
  };
  return deepFreeze(compiled);
}

/** Each config relationship is valid on its own, and names a trust domain once. */
function checkFederation(c: ServerConfigParsed): void {
  const seen = new Set<string>();
  (c.federation?.relationships ?? []).forEach((r, i) => {
    const at = `config: federation.relationships[${i}]`;
    let td: string;
    try {
      td = validateFederationInput(
        {
          trustDomain: r.trust_domain,
          bundleEndpointUrl: r.bundle_endpoint_url,
          profile: r.profile,
          endpointSpiffeId: r.endpoint_spiffe_id,
        },
        c.trust_domain,
      ).trustDomain;
    } catch (e) {
      throw new InvalidArgumentError(`${at}.${(e as Error).message}`);
    }
    if (seen.has(td)) throw new InvalidArgumentError(`${at}.trust_domain: "${td}" is listed twice`);
    seen.add(td);
  });
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
