// The server configuration: one schema gives validation and the static type. Unknown keys are
// errors (strict objects); bad values are rejected with the key path, never clamped.
import { z } from 'zod';
import { parseDuration } from '../../../core/duration.ts';
import { TrustDomain } from '../../../core/spiffe-id.ts';
import { keyTypes } from '../../../core/authority.ts';
import { nodeAttestorsServerSchema } from '../../../plugins/node-attestors/catalog.ts';
import { diskKekConfigSchema } from '../../../plugins/kek-managers/catalog.ts';

const duration = (_what: string) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    try {
      return parseDuration(String(v), '');
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected HOST:PORT')
  .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) <= 65535, 'port must be 0..65535');

const keyType = z.enum(keyTypes as unknown as [string, ...string[]]);

const sinkName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected lowercase letters, digits, "-" and "_"');

/** Common to every export sink: how it reads the audit table (the spool) and retries. */
const sinkCommon = {
  name: sinkName,
  /** Where a sink without a cursor file starts: the first record, or the head at first start. */
  start: z.enum(['beginning', 'now']).default('beginning'),
  batch_size: z.number().int().min(1).max(10_000).default(100),
  poll_interval: duration('poll_interval')
    .refine((ms) => ms >= 10 && ms <= 60_000, 'must be between 10ms and 1m')
    .default(1_000),
  max_backoff: duration('max_backoff')
    .refine((ms) => ms >= 100 && ms <= 3_600_000, 'must be between 100ms and 1h')
    .default(60_000),
};

const auditSinkSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('file'),
    ...sinkCommon,
    path: z.string().min(1),
    /** Rotate when the file would grow past this many bytes. */
    max_bytes: z
      .number()
      .int()
      .min(4096)
      .default(100 * 1024 * 1024),
    /** Rotated files kept (path.1 … path.N). */
    keep: z.number().int().min(1).max(1000).default(5),
    fsync: z.enum(['always', 'interval', 'never']).default('always'),
    fsync_interval: duration('fsync_interval')
      .refine((ms) => ms >= 10 && ms <= 60_000, 'must be between 10ms and 1m')
      .default(1_000),
  }),
  z.strictObject({
    type: z.literal('syslog'),
    ...sinkCommon,
    address: hostPort,
    /** RFC 5425: TLS to the receiver, verified with this CA file. */
    tls: z
      .strictObject({
        ca_file: z.string().min(1),
        /** Name checked in the receiver's certificate; default: the address's host. */
        server_name: z.string().default(''),
      })
      .optional(),
    /** Syslog facility number 0..23 (10 = authpriv). */
    facility: z.number().int().min(0).max(23).default(10),
    app_name: z.string().min(1).max(48).default('tessera'),
    connect_timeout: duration('connect_timeout').default(5_000),
  }),
  z.strictObject({
    type: z.literal('webhook'),
    ...sinkCommon,
    url: z.url({ protocol: /^https?$/ }),
    /** File holding the HMAC-SHA256 secret (its bytes, trailing newline removed); ≥ 16 bytes. */
    secret_file: z.string().min(1),
    timeout: duration('timeout').default(10_000),
    /** Attempts per batch before the sink backs off (max_backoff) and starts over. */
    attempts: z.number().int().min(1).max(20).default(5),
  }),
]);

export const serverConfigSchema = z.strictObject({
  trust_domain: z.string().transform((v, ctx) => {
    try {
      return TrustDomain.parse(v).name;
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  }),
  data_dir: z.string().min(1),
  listen: hostPort.default('127.0.0.1:8081'),
  /** Plain HTTP for /healthz, /readyz, /metrics; "" disables it. */
  health_listen: z.union([hostPort, z.literal('')]).default('127.0.0.1:8082'),
  /** OIDC discovery, JWKS and the https_web bundle endpoint; "" disables it. */
  public_listen: z.union([hostPort, z.literal('')]).default(''),
  /** PEM certificate (chain) and key of the public listener; both "" = plain HTTP (behind a TLS proxy). */
  public_cert_file: z.string().default(''),
  public_key_file: z.string().default(''),
  /** Default: <data_dir>/admin.sock */
  admin_socket: z.string().default(''),
  /** postgres://...; "" = SQLite at <data_dir>/datastore.sqlite3 */
  datastore_url: z.string().default(''),
  datastore_pool_size: z.number().int().min(1).max(100).default(10),
  key_manager: z.enum(['disk', 'memory']).default('disk'),
  ca: z
    .strictObject({
      key_type: keyType.default('ec-p256'),
      ttl: duration('ca.ttl').default(86_400_000),
      /** Upstream CA: the X.509 authority becomes an intermediate under it. */
      upstream_cert_file: z.string().default(''),
      upstream_key_file: z.string().default(''),
    })
    .prefault({}),
  jwt: z
    .strictObject({
      key_type: keyType.default('ec-p256'),
      ttl: duration('jwt.ttl').default(86_400_000),
      /** The `iss` claim of JWT-SVIDs; "" = none. */
      issuer: z.union([z.literal(''), z.url({ protocol: /^https?$/ })]).default(''),
    })
    .prefault({}),
  default_x509_svid_ttl: duration('default_x509_svid_ttl').default(3_600_000),
  default_jwt_svid_ttl: duration('default_jwt_svid_ttl').default(300_000),
  agent_svid_ttl: duration('agent_svid_ttl').default(3_600_000),
  join_token_ttl: duration('join_token_ttl').default(600_000),
  /** spiffe_refresh_hint of the bundle; absent = min(ca.ttl, jwt.ttl) / 10, at least 1 minute. */
  bundle_refresh_hint: duration('bundle_refresh_hint').optional(),
  /**
   * How long a server's first authority stays published in the stored bundle before it signs,
   * so that every server sharing the database has it; absent = 2s with PostgreSQL, 0 with SQLite.
   */
  authority_publish_delay: duration('authority_publish_delay')
    .refine((ms) => ms <= 300_000, 'must be at most 5m')
    .optional(),
  /** How often the federated bundles are re-read from the datastore (other servers may change them). */
  federated_bundle_refresh_interval: duration('federated_bundle_refresh_interval')
    .refine((ms) => ms >= 100 && ms <= 3_600_000, 'must be between 100ms and 1h')
    .default(10_000),
  /** One key per enabled built-in node attestor (plugins/node-attestors/catalog.ts). */
  node_attestors: nodeAttestorsServerSchema,
  /** RFC 8693 token exchange at <issuer>/token (docs/token-exchange.md); absent = disabled. */
  sts: z
    .strictObject({
      /** External OIDC issuers whose tokens may be exchanged. */
      issuers: z
        .array(
          z.strictObject({
            /**
             * Compared byte for byte with the token's `iss`; or `spiffe://<trust domain>`: a
             * federated trust domain whose JWT-SVIDs are accepted, verified with its bundle.
             */
            issuer: z.union([
              z.url({ protocol: /^https$/ }),
              z
                .string()
                .regex(
                  /^spiffe:\/\/[a-z0-9._-]+$/,
                  'expected an https URL or spiffe://<trust domain>',
                ),
            ]),
            /**
             * A static JWKS file (discovery issuers are registered through the admin API). Required
             * for an https issuer; not allowed for spiffe://<trust domain> (keys from its bundle).
             */
            jwks_file: z.string().min(1).optional(),
            /** The subject token's `aud` must contain at least one of these. */
            audiences: z.array(z.string().min(1)).min(1),
          }),
        )
        .default([]),
      /** Trust policy documents (docs/trust-policies.md), compiled at start. */
      policies: z.array(z.unknown()).default([]),
      max_ttl: duration('sts.max_ttl').default(3_600_000),
      /**
       * Trust policies (client_id of their access tokens) whose bearer tokens may call
       * <issuer>/introspect and <issuer>/revoke (docs/token-exchange.md).
       */
      introspection_clients: z.array(z.string().min(1)).default([]),
      /** Serve introspection and revocation without caller authentication. */
      introspection_open: z.boolean().default(false),
      /**
       * PEM file of extra CA certificates trusted (besides Node's roots and NODE_EXTRA_CA_CERTS)
       * when fetching discovery documents and JWKS of issuers registered with discovery.
       */
      ca_file: z.string().default(''),
      /** How often a server checks the datastore for issuers/policies changed by another server. */
      reload_interval: duration('sts.reload_interval')
        .refine((v) => v >= 100 && v <= 3_600_000, 'must be between 100ms and 1h')
        .default(5_000),
      /** How old a federated trust bundle may be when it verifies a JWT-SVID subject token. */
      federated_bundle_max_staleness: duration('sts.federated_bundle_max_staleness').default(
        30_000,
      ),
      /**
       * Per client address on the public POST endpoints (token, introspect, revoke): sustained
       * requests per second (0 = no limit) and the burst allowed after idling.
       */
      rate_limit: z
        .strictObject({
          per_second: z.number().min(0).max(1_000_000).default(100),
          burst: z.number().int().min(1).max(1_000_000).default(200),
        })
        .prefault({}),
    })
    .optional(),
  /** Per client address on the mTLS API (as SPIRE): node attestation and SVID signing; 0 = off. */
  rate_limit: z
    .strictObject({
      attestation_per_second: z.number().min(0).max(1_000_000).default(1),
      attestation_burst: z.number().int().min(1).max(1_000_000).default(10),
      signing_per_second: z.number().min(0).max(1_000_000).default(500),
      signing_burst: z.number().int().min(1).max(1_000_000).default(1000),
    })
    .prefault({}),
  /** Audit checkpoints and SIEM export (docs/configuration.md#audit). */
  audit: z
    .strictObject({
      checkpoints: z
        .strictObject({
          enabled: z.boolean().default(true),
          interval: duration('audit.checkpoints.interval')
            .refine((ms) => ms >= 100 && ms <= 86_400_000, 'must be between 100ms and 24h')
            .default(60_000),
          /** Ed25519 key, created on first start; default <data_dir>/audit-checkpoint.key. */
          key_file: z.string().default(''),
          sink: z
            .discriminatedUnion('type', [
              z.strictObject({
                type: z.literal('file'),
                /** Default <data_dir>/audit-checkpoints.jsonl */
                path: z.string().default(''),
              }),
              z.strictObject({
                type: z.literal('http'),
                url: z.url({ protocol: /^https?$/ }),
                timeout: duration('audit.checkpoints.sink.timeout').default(5_000),
                attempts: z.number().int().min(1).max(10).default(3),
              }),
            ])
            .default({ type: 'file', path: '' }),
        })
        .prefault({}),
      sinks: z.array(auditSinkSchema).max(16).default([]),
    })
    .prefault({}),
  log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Log lines: text for people, json for collectors; auto = text when stderr is a terminal. */
  log_format: z.enum(['auto', 'text', 'json']).default('auto'),
  max_request_bytes: z
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(4 * 1024 * 1024),
  /**
   * SPIFFE federation (docs/federation.md): bundle endpoint polling and config relationships.
   * Absent = every default (federation itself is always on: relationships may come from the API).
   */
  federation: z
    .strictObject({
      /** PEM CA certificates trusted for https_web endpoints besides the system roots. */
      ca_file: z.string().default(''),
      /** Bound on one bundle fetch, redirects included. */
      fetch_timeout: duration('federation.fetch_timeout')
        .refine((ms) => ms >= 1000 && ms <= 300_000, 'must be between 1s and 5m')
        .default(10_000),
      /** Relationships applied at start (source "config"); the admin API cannot change them. */
      relationships: z
        .array(
          z.strictObject({
            trust_domain: z.string().min(1),
            bundle_endpoint_url: z.string().min(1),
            profile: z.enum(['https_web', 'https_spiffe']),
            /** Required for https_spiffe: the SPIFFE ID the endpoint must present. */
            endpoint_spiffe_id: z.string().default(''),
            /** Initial bundle (SPIFFE JSON or PEM), stored when none is stored yet. */
            trust_bundle_file: z.string().default(''),
          }),
        )
        .max(1000)
        .default([]),
    })
    .optional(),
  /**
   * The secret store (docs/access.md, "Secret store"): which manager keeps the key-encryption
   * keys. Absent = `disk` with its defaults (KEK files in <data_dir>/secrets).
   */
  secrets: z
    .strictObject({
      key_manager: z
        .strictObject({
          disk: diskKekConfigSchema.prefault({}),
        })
        .prefault({}),
    })
    .prefault({}),
});

export type ServerConfigInput = z.input<typeof serverConfigSchema>;
export type ServerConfigParsed = z.output<typeof serverConfigSchema>;
