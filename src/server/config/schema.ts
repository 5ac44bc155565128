// The server configuration: one schema gives validation and the static type. Unknown keys are
// errors (strict objects); bad values are rejected with the key path, never clamped.
import { z } from 'zod';
import { parseDuration } from '../../core/duration.ts';
import { TrustDomain } from '../../core/spiffe-id.ts';
import { keyTypes } from '../../core/authority.ts';

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
  node_attestors: z
    .strictObject({
      join_token: z.strictObject({}).optional(),
      x509pop: z
        .strictObject({
          /** PEM file of the CA certificates agent certificates must chain to. */
          ca_bundle_file: z.string().min(1),
        })
        .optional(),
    })
    .prefault({ join_token: {} }),
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
             * A static JWKS file (discovery-based fetching comes later). Required for an https
             * issuer; not allowed for spiffe://<trust domain> (its keys come from the bundle).
             */
            jwks_file: z.string().min(1).optional(),
            /** The subject token's `aud` must contain at least one of these. */
            audiences: z.array(z.string().min(1)).min(1),
          }),
        )
        .min(1),
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
      /** How old a federated trust bundle may be when it verifies a JWT-SVID subject token. */
      federated_bundle_max_staleness: duration('sts.federated_bundle_max_staleness').default(
        30_000,
      ),
    })
    .optional(),
  log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  max_request_bytes: z
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(4 * 1024 * 1024),
});

export type ServerConfigInput = z.input<typeof serverConfigSchema>;
export type ServerConfigParsed = z.output<typeof serverConfigSchema>;
