// docker: the container a process runs in (from its cgroups), described by the Docker Engine API
// over the daemon's Unix socket. Selector names follow SPIRE's docker attestor; docker:name and
// docker:image_config_digest are additions. Environment variables are never all emitted (they hold
// secrets): only the keys the operator lists.
import { z } from 'zod';
import { TesseraError, UnavailableError } from '../../../core/errors.ts';
import type { Selector } from '../../../core/selector.ts';
import { checkPid } from '../unix/proc-error.ts';
import { validSelectors } from '../unix/selectors.ts';
import type { WorkloadAttestor } from '../workload-attestor.ts';
import { cgroupMatchers, defaultDockerMatchers, findContainer, readCgroupPaths } from './cgroup.ts';
import { boundedGet, durationMs } from './http-get.ts';

export const DOCKER_TYPE = 'docker';

export const dockerConfigSchema = z.strictObject({
  /** Path of the daemon's Unix socket; a `unix://` prefix (SPIRE's form) is accepted. */
  docker_socket_path: z
    .string()
    .min(1)
    .transform((p) => p.replace(/^unix:\/\//, ''))
    .default('/var/run/docker.sock'),
  /**
   * Engine API version to pin, e.g. "1.44"; "" (default) sends unversioned requests, which the
   * daemon serves at its own version. Docker 29 refuses versions below 1.44 and Docker 24 those
   * above 1.43, so no pinned default works everywhere; the fields used here are stable.
   */
  docker_version: z
    .string()
    .regex(/^(\d{1,2}\.\d{1,3})?$/, 'expected an API version like "1.44", or ""')
    .default(''),
  /** Overrides the default cgroup matchers (see cgroup.ts). */
  container_id_cgroup_matchers: cgroupMatchers.optional(),
  /** Environment variables to emit as docker:env:KEY=VALUE. Only these: env holds secrets. */
  env_keys: z
    .array(z.string().regex(/^[^=\u0000-\u001f]+$/, 'expected an environment variable name'))
    .default([]),
  timeout: durationMs.default(5_000),
  max_response_bytes: z
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(4 * 1024 * 1024),
});

export type DockerConfig = z.output<typeof dockerConfigSchema>;

export interface DockerAttestorDeps {
  readonly procRoot?: string;
}

/** The fields of GET /containers/{id}/json this attestor reads; the rest are ignored. */
const inspectSchema = z.object({
  Id: z.string(),
  Name: z.string().optional(),
  /** The image config digest, sha256:<hex>. */
  Image: z.string().optional(),
  Config: z
    .object({
      /** The image as the container was created with it (a reference or an id). */
      Image: z.string().nullish(),
      Labels: z.record(z.string(), z.string()).nullish(),
      Env: z.array(z.string()).nullish(),
    })
    .nullish(),
});

export type ContainerInspect = z.output<typeof inspectSchema>;

export function createDockerAttestor(
  config: DockerConfig,
  deps: DockerAttestorDeps,
): WorkloadAttestor {
  const procRoot = deps.procRoot ?? '/proc';
  const matchers = config.container_id_cgroup_matchers ?? defaultDockerMatchers;
  const envKeys = new Set(config.env_keys);
  const versionPrefix = config.docker_version ? `/v${config.docker_version}` : '';

  async function inspect(id: string, signal: AbortSignal): Promise<ContainerInspect> {
    const res = await boundedGet({
      what: DOCKER_TYPE,
      peer: config.docker_socket_path,
      https: false,
      options: {
        socketPath: config.docker_socket_path,
        path: `${versionPrefix}/containers/${id}/json`,
        headers: { host: 'docker', accept: 'application/json' },
      },
      timeoutMs: config.timeout,
      maxBytes: config.max_response_bytes,
      signal,
    });
    if (res.status === 404) {
      throw new UnavailableError(
        `docker: container ${id} is unknown to the Docker daemon (it may have exited)`,
      );
    }
    if (res.status !== 200) {
      throw new UnavailableError(
        `docker: the Docker daemon answered ${res.status} for container ${id}: ${daemonMessage(res.body)}`,
      );
    }
    let parsed;
    try {
      parsed = inspectSchema.safeParse(JSON.parse(res.body.toString('utf8')));
    } catch (e) {
      throw new TesseraError('internal', 'docker: the container inspect response is not JSON', {
        cause: e,
      });
    }
    if (!parsed.success) {
      throw new TesseraError(
        'internal',
        `docker: unexpected container inspect response: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`,
      );
    }
    // Defence in depth: the daemon must describe the container that was asked for.
    if (parsed.data.Id !== id) {
      throw new TesseraError(
        'internal',
        `docker: asked for container ${id}, got ${parsed.data.Id}`,
      );
    }
    return parsed.data;
  }

  return {
    type: DOCKER_TYPE,
    async attest(pid, signal) {
      checkPid(pid);
      signal.throwIfAborted();
      const paths = await readCgroupPaths(procRoot, pid, DOCKER_TYPE, signal);
      const match = findContainer(paths, matchers, DOCKER_TYPE);
      if (!match) return [];
      return dockerSelectors(await inspect(match.containerId, signal), envKeys);
    },
  };
}

export function dockerSelectors(c: ContainerInspect, envKeys: ReadonlySet<string>): Selector[] {
  const out: Selector[] = [];
  const add = (value: string) => out.push({ type: DOCKER_TYPE, value });
  const labels = c.Config?.Labels ?? {};
  for (const k of Object.keys(labels).sort()) add(`label:${k}:${labels[k]}`);
  if (c.Config?.Image) add(`image_id:${c.Config.Image}`);
  if (c.Image) add(`image_config_digest:${c.Image}`);
  if (c.Name) add(`name:${c.Name.replace(/^\//, '')}`);
  if (envKeys.size > 0) {
    for (const e of c.Config?.Env ?? []) {
      const eq = e.indexOf('=');
      const key = eq < 0 ? e : e.slice(0, eq);
      if (eq > 0 && envKeys.has(key)) add(`env:${e}`);
    }
  }
  return validSelectors(out);
}

/** The daemon's `{"message": ...}` error body, shortened; never the raw body of a large reply. */
function daemonMessage(body: Buffer): string {
  try {
    const m = (JSON.parse(body.toString('utf8')) as { message?: unknown }).message;
    if (typeof m === 'string') return m.slice(0, 200);
  } catch {
    // not JSON
  }
  return '(no message)';
}
