// The agent configuration: one schema for validation and the static type. Unknown keys are
// errors; bad values are refused with the key path.
import { z } from 'zod';
import { NAME_PATTERN } from '../../core/access.ts';
import { parseDuration } from '../../core/duration.ts';
import { TrustDomain } from '../../core/spiffe-id.ts';
import { nodeAttestorsAgentShape } from '../../plugins/node-attestors/catalog.ts';
import { parseLoopbackListen } from '../credentials/listen-address.ts';

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
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

/** `127.0.0.1:PORT` or `[::1]:PORT` (credentials.http_listen, cloud.listen, ...); "" = off. */
const loopbackListen = z
  .string()
  .default('')
  .superRefine((v, ctx) => {
    if (v === '') return;
    try {
      parseLoopbackListen(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  });

/** A server workload name (core/access.ts NAME_PATTERN); "" = none. */
const serverWorkloadName = z
  .string()
  .default('')
  .refine((v) => v === '' || NAME_PATTERN.test(v), {
    message: 'expected a server workload name (lowercase letters, digits, ".", "_", "-")',
  });
/** A file the agent writes for a workload: where, whose, which mode (cloud/token-files.ts). */
const ownedFile = z.strictObject({
  path: z.string().min(1).max(4096),
  uid: z.number().int().min(0).max(0xfffffffe),
  gid: z.number().int().min(0).max(0xfffffffe),
  mode: z
    .union([z.literal('0600'), z.literal('0640'), z.literal(0o600), z.literal(0o640)])
    .default('0600')
    .transform((m) => (typeof m === 'number' ? m : parseInt(m, 8))),
});

const jwtTokenFile = ownedFile.extend({
  spiffe_id: z.string().min(1).max(2048),
  audience: z.string().min(1).max(1024),
});

export const agentConfigSchema = z.strictObject({
  trust_domain: z.string().transform((v, ctx) => {
    try {
      return TrustDomain.parse(v).name;
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  }),
  /**
   * The servers' API listeners: HOST:PORT, a comma-separated list of them (as --server A,B), or
   * a YAML list; a name may resolve to several addresses. The agent uses one at a time and
   * moves to the next when it stops answering (servers of one trust domain share a database).
   */
  server_address: z
    .union([
      z.string().transform((v) =>
        v
          .split(',')
          .map((a) => a.trim())
          .filter((a) => a !== ''),
      ),
      z.array(z.string()),
    ])
    .pipe(z.array(hostPort).min(1, 'expected HOST:PORT').max(16, 'at most 16 addresses')),
  /** The Workload API Unix socket. */
  socket_path: z.string().min(1),
  data_dir: z.string().min(1),
  /** Node attestation: at most one of the built-in kinds (join_token, x509pop). */
  ...nodeAttestorsAgentShape,
  /** How the agent first trusts the server: a PEM file, an https URL serving PEM, or nothing (insecure). */
  trust_bundle_file: z.string().default(''),
  trust_bundle_url: z.union([z.literal(''), z.url({ protocol: /^https$/ })]).default(''),
  insecure_bootstrap: z.boolean().default(false),
  /** Built-in workload attestors by name with their config (see docs/workload-attestors.md). */
  workload_attestors: z.record(z.string(), z.unknown()).default({ unix: {} }),
  /** Most X.509-SVIDs kept minted at once (least recently used beyond it are dropped). */
  x509_svid_cache_max_size: z.number().int().min(1).max(1_000_000).default(1000),
  /** Most JWT-SVIDs cached per (SPIFFE ID, audience set). */
  jwt_svid_cache_max_size: z.number().int().min(1).max(1_000_000).default(1000),
  /** Claims besides sub, aud, exp that ValidateJWTSVID returns for federated JWT-SVIDs. */
  allowed_foreign_jwt_claims: z.array(z.string().min(1).max(256)).max(100).default([]),
  /** Workload API connections served at once; more are closed at accept. */
  workload_api_max_connections: z.number().int().min(1).max(1_000_000).default(1024),
  /** Workload API connections one caller (uid) may hold; below the global limit. */
  workload_api_max_connections_per_uid: z.number().int().min(1).max(1_000_000).default(128),
  /** A Workload API connection that has not sent the HTTP/2 preface by then is closed. */
  workload_api_preface_timeout: duration.default(5000),
  /** The workload-facing credential API (docs/access.md, "Getting a credential"). */
  credentials: z
    .strictObject({
      /**
       * Loopback HTTP door (`GET /v1/credentials/{server_workload}`): `127.0.0.1:PORT` or
       * `[::1]:PORT`; "" (the default) serves the credential API on the Workload API socket only.
       */
      http_listen: loopbackListen,
      /** Most released credentials the agent keeps (per client and server workload). */
      cache_max_size: z.number().int().min(1).max(1_000_000).default(10_000),
      /** Bound on one release call to the server. */
      release_timeout: duration.default(30_000),
    })
    .prefault({}),
  /** Cloud-SDK credential endpoints (docs/cloud-credentials.md). */
  cloud: z
    .strictObject({
      /**
       * One loopback HTTP port serving AWS IMDSv2 and container credentials, GCE metadata and
       * Azure managed identity by path: `127.0.0.1:PORT` or `[::1]:PORT`; "" (default) = off.
       */
      listen: loopbackListen,
      /** The GCE metadata server (src/agent/cloud/gcp/, docs/cloud-credentials.md). */
      gcp: z
        .strictObject({
          /**
           * The `--protocol gcp` server workload behind the `default` service account; "" = the
           * one the caller is granted (ListGrantedServerWorkloads).
           */
          server_workload: serverWorkloadName,
          /** What `project/project-id` answers ("" = 404, as for a key GCE does not have). */
          project_id: z
            .string()
            .default('')
            .refine((v) => v === '' || /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/.test(v), {
              message: 'expected a Google Cloud project ID (6-30 of a-z, 0-9, -)',
            }),
          /** What `project/numeric-project-id` answers ("" = 404). */
          project_number: z
            .union([z.string(), z.number().int().nonnegative()])
            .transform(String)
            .default('')
            .refine((v) => v === '' || /^[0-9]{1,20}$/.test(v), {
              message: 'expected the numeric project number',
            }),
          /** What `service-accounts/default/email` answers ("" = 404). */
          email: z
            .string()
            .default('')
            .refine((v) => v === '' || /^[^\s@/]{1,64}@[A-Za-z0-9.-]{1,253}$/.test(v), {
              message: 'expected a service account email',
            }),
        })
        .prefault({}),
      /** Azure IMDS and App Service managed identity (src/agent/cloud/azure/). */
      azure: z
        .strictObject({
          /**
           * The `--protocol azure` server workload behind the system-assigned identity; "" =
           * the one the caller is granted (ListGrantedServerWorkloads).
           */
          server_workload: serverWorkloadName,
        })
        .prefault({}),
      /**
       * A directory (besides data_dir) token files may be written in, e.g. one the workloads
       * can reach; "" = data_dir only (cloud/token-files.ts).
       */
      token_dir: z.string().default(''),
      /** JWT-SVID files kept fresh for SDKs that read a token file (web identity). */
      token_files: z.array(jwtTokenFile).max(256).default([]),
      /** AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE files: one random token per file and uid. */
      aws_container_token_files: z.array(ownedFile).max(256).default([]),
    })
    .prefault({}),
  /** The credential-injection proxy (docs/injection.md). */
  proxy: z
    .strictObject({
      /**
       * Local listeners: each `listen` (loopback `127.0.0.1:PORT` or `[::1]:PORT`) forwards to
       * its server workload with the credential added (the handler of its protocol).
       */
      listeners: z
        .array(
          z.strictObject({
            server_workload: z
              .string()
              .regex(/^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/, 'expected a server workload name'),
            listen: loopbackListen.refine((v) => v !== '', 'is required'),
          }),
        )
        .max(256)
        .default([])
        .superRefine((list, ctx) => {
          const seen = new Set<string>();
          list.forEach((l, i) => {
            if (seen.has(l.listen))
              ctx.addIssue({
                code: 'custom',
                path: [i, 'listen'],
                message: `${l.listen} is used by another listener`,
              });
            seen.add(l.listen);
          });
        }),
      /** Explicit HTTP proxy (HTTP_PROXY / HTTPS_PROXY) address; "" (default) = off. Served by the HTTP part. */
      http_listen: loopbackListen,
      /** Proxy connections served at once (every way in together); more are closed at accept. */
      max_connections: z.number().int().min(1).max(1_000_000).default(1024),
      /** Proxy connections one caller (uid) may hold at once. */
      max_connections_per_uid: z.number().int().min(1).max(1_000_000).default(128),
      /**
       * Transparent redirect (docs/injection.md, "Transparent redirect"): the loopback port
       * iptables REDIRECTs selected workloads' connections to, `127.0.0.1:PORT`; "" = off.
       */
      transparent_listen: loopbackListen,
      /** Whose outbound TCP connections `tessera agent proxy rules` redirects. */
      transparent: z
        .strictObject({
          uids: z.array(z.number().int().min(0).max(4_294_967_294)).max(256).default([]),
          /** cgroup v2 paths (as in /proc/PID/cgroup, e.g. /system.slice/app.service). */
          cgroups: z
            .array(z.string().regex(/^\/[A-Za-z0-9_.@:\/-]{0,1023}$/, 'expected a cgroup v2 path'))
            .max(256)
            .default([]),
          /** Also listen on [::1] (same port) and print ip6tables rules. */
          ipv6: z.boolean().default(false),
        })
        .prefault({}),
      /**
       * A redirected connection to an address that is no server workload is tunnelled untouched
       * (true) instead of closed (false, the default).
       */
      passthrough: z.boolean().default(false),
      /**
       * Database sessions (postgres, mysql, redis) relayed by the kernel once logged in
       * (docs/injection.md, "Kernel relay"): "auto" (default) when the agent may load BPF
       * (root), else user space; "off": always user space.
       */
      kernel_relay: z.enum(['auto', 'off']).default('auto'),
    })
    .prefault({}),
  /** Server reconnect backoff cap. */
  max_backoff: duration.default(30_000),
  log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Log lines: text for people, json for collectors; auto = text when stderr is a terminal. */
  log_format: z.enum(['auto', 'text', 'json']).default('auto'),
});

export type AgentConfigParsed = z.output<typeof agentConfigSchema>;
