// k8s_psat: both halves and their config. Files the config names (JWKS, CA, TokenReview bearer
// token) are read here, by the plugin that owns the setting, not in the verification code.
//
// Server: `node_attestors.k8s_psat.clusters.<name>` with `service_account_allow_list` and one
// way to verify tokens: `issuer` + `jwks_file`, `issuer` (+ `oidc_discovery_url`, `ca_file`), or
// `token_review` (`api_server`, `token_file`, `ca_file`). Agent: `k8s_psat.cluster`, `token_path`.
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { InvalidArgumentError } from '../../../core/errors.ts';
import type { NodeAttestorPlugin } from '../node-attestor.ts';
import { DEFAULT_PSAT_TOKEN_PATH, k8sPsatAgent } from './agent.ts';
import { DiscoveredKeys, discoveryUrl } from './discovery.ts';
import { httpsUrl } from './https-json.ts';
import { parsePsatJwks } from './jwks.ts';
import { CLUSTER_NAME_RE } from './payload.ts';
import { type PsatCluster, K8S_PSAT_TYPE, createK8sPsatAttestor } from './server.ts';
import { reviewToken } from './token-review.ts';
import { verifyPsat } from './token.ts';

const HTTP_TIMEOUT_MS = 5_000;
const MIN_REFRESH_MS = 30_000;
const MAX_FILE_BYTES = 256 * 1024;

const httpsUrlString = z
  .string()
  .max(2048)
  .refine((v) => {
    try {
      httpsUrl(v, '');
      return true;
    } catch {
      return false;
    }
  }, 'expected an https URL without userinfo or fragment');

const clusterSchema = z
  .strictObject({
    /** `namespace:name` of the service accounts agents run as. */
    service_account_allow_list: z
      .array(z.string().regex(/^[a-z0-9.-]{1,253}:[a-z0-9.-]{1,253}$/, 'expected NAMESPACE:NAME'))
      .min(1)
      .max(1000),
    /** The token must be for one of these audiences. */
    audience: z.array(z.string().min(1).max(256)).min(1).max(16).default(['tessera']),
    /** The cluster's service-account issuer (`iss` of its tokens): verify with its keys. */
    issuer: z.string().min(1).max(2048).optional(),
    /** Its JWK Set as a file (`kubectl get --raw /openid/v1/jwks`). Without it: OIDC discovery. */
    jwks_file: z.string().min(1).optional(),
    /** Where the discovery document is (default `<issuer>/.well-known/openid-configuration`). */
    oidc_discovery_url: httpsUrlString.optional(),
    /** PEM CA for discovery (default: Node's roots). */
    ca_file: z.string().min(1).optional(),
    /** Turns trust on first use off for this cluster (as the cloud attestors' option). */
    allow_reattestation: z.boolean().default(false),
    /** Verify through the cluster's API server instead of its keys. */
    token_review: z
      .strictObject({
        api_server: httpsUrlString,
        /** Bearer token allowed to create TokenReviews; read on every review. */
        token_file: z.string().min(1),
        /** PEM CA of the API server (default: Node's roots). */
        ca_file: z.string().min(1).optional(),
      })
      .optional(),
  })
  .superRefine((c, ctx) => {
    const issue = (path: string, message: string) =>
      ctx.addIssue({ code: 'custom', path: [path], message });
    if (c.token_review && c.issuer !== undefined)
      issue('issuer', 'use issuer (with its keys) or token_review, not both');
    else if (!c.token_review && c.issuer === undefined)
      issue('issuer', 'required (or configure token_review)');
    if (c.token_review && (c.jwks_file || c.oidc_discovery_url || c.ca_file))
      issue('token_review', 'jwks_file, oidc_discovery_url and ca_file belong to the issuer mode');
    if (c.jwks_file && (c.oidc_discovery_url || c.ca_file))
      issue(
        'jwks_file',
        'oidc_discovery_url and ca_file are for OIDC discovery, not with jwks_file',
      );
  });

const serverSchema = z.strictObject({
  clusters: z
    .record(
      z.string().regex(CLUSTER_NAME_RE, 'cluster names are 1..63 of [A-Za-z0-9._-]'),
      clusterSchema,
    )
    .refine((m) => Object.keys(m).length > 0, 'configure at least one cluster'),
});

const agentSchema = z.strictObject({
  /** The cluster's name, as the server's config names it. */
  cluster: z.string().regex(CLUSTER_NAME_RE, 'expected 1..63 characters of [A-Za-z0-9._-]'),
  /** The projected service-account token (audience: the server's configured audience). */
  token_path: z.string().min(1).default(DEFAULT_PSAT_TOKEN_PATH),
});

type ClusterConfig = z.output<typeof clusterSchema>;

function readConfigFile(file: string, where: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InvalidArgumentError(
      `config: ${where}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  if (text.length > MAX_FILE_BYTES)
    throw new InvalidArgumentError(
      `config: ${where}: ${file} is larger than ${MAX_FILE_BYTES} bytes`,
    );
  return text;
}

function configured<T>(where: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new InvalidArgumentError(`config: ${where}.${(e as Error).message}`);
  }
}

function clusterOf(name: string, c: ClusterConfig, now: () => number): PsatCluster {
  const where = `node_attestors.k8s_psat.clusters.${name}`;
  const allowedServiceAccounts = new Set(c.service_account_allow_list);
  const allowReattestation = c.allow_reattestation;
  const audiences = c.audience;
  if (c.token_review) {
    const tr = c.token_review;
    const ca = tr.ca_file ? readConfigFile(tr.ca_file, `${where}.token_review.ca_file`) : undefined;
    const apiServer = configured(where, () => httpsUrl(tr.api_server, 'token_review.api_server'));
    // Fail at start, not at the first attestation, when the token file is missing.
    readConfigFile(tr.token_file, `${where}.token_review.token_file`);
    const bearer = async () =>
      (await readFile(tr.token_file, 'utf8')).slice(0, MAX_FILE_BYTES).trim();
    return {
      allowedServiceAccounts,
      allowReattestation,
      verify: (token) =>
        reviewToken(token, {
          cluster: name,
          apiServer,
          ca,
          bearer,
          audiences,
          timeoutMs: HTTP_TIMEOUT_MS,
        }),
    };
  }
  const issuer = c.issuer as string;
  let resolveKey: (kid: string) => Promise<KeyObject | undefined>;
  if (c.jwks_file) {
    const keys = parsePsatJwks(
      readConfigFile(c.jwks_file, `${where}.jwks_file`),
      `config: ${where}.jwks_file`,
    );
    resolveKey = async (kid) => keys.get(kid);
  } else {
    const discovered = new DiscoveredKeys({
      issuer,
      url: configured(where, () => discoveryUrl(issuer, c.oidc_discovery_url ?? '')),
      ca: c.ca_file ? readConfigFile(c.ca_file, `${where}.ca_file`) : undefined,
      timeoutMs: HTTP_TIMEOUT_MS,
      minRefreshMs: MIN_REFRESH_MS,
      now,
    });
    resolveKey = (kid) => discovered.resolve(kid);
  }
  return {
    allowedServiceAccounts,
    allowReattestation,
    verify: (token) =>
      verifyPsat(token, { cluster: name, issuer, audiences, now: now(), resolveKey }),
  };
}

export const k8sPsatPlugin: NodeAttestorPlugin<typeof serverSchema, typeof agentSchema> = {
  type: K8S_PSAT_TYPE,
  serverSchema,
  createServer(config, deps) {
    const clusters = new Map<string, PsatCluster>();
    for (const [name, c] of Object.entries(config.clusters))
      clusters.set(name, clusterOf(name, c, deps.now));
    return createK8sPsatAttestor(clusters);
  },
  agentSchema,
  createAgent: async (config) => k8sPsatAgent(config.cluster, config.token_path),
};
