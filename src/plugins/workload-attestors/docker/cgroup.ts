// Container ids from /proc/<pid>/cgroup, shared by the docker and k8s attestors. Each line is
// `hierarchy-id:controllers:path` (cgroup v1 has one line per hierarchy, v2 a single `0::path`);
// the path may itself hold colons. A matcher is a regex with a named group `id` (and, for
// Kubernetes, optionally `poduid`).
//
// Trust: cgroup paths are written by root (the container runtime or systemd), except inside a
// delegated subtree (systemd user@.service), where an unprivileged user may create cgroups with any
// name, e.g. `docker-<someone else's id>.scope`. Default matchers are therefore anchored at the
// cgroup root (after any `/..` segments, which a cgroup namespace puts in front of paths outside
// it), so a path under /user.slice never matches.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { FailedPreconditionError } from '../../../core/errors.ts';
import { procFsError } from '../unix/proc-error.ts';

/** The most a cgroup file may hold; a real one is a few hundred bytes. */
const MAX_CGROUP_FILE_BYTES = 64 * 1024;

export interface ContainerMatch {
  readonly containerId: string;
  /** Pod UID in its canonical dashed form, when the matcher captured one. */
  readonly podUid?: string;
}

/** The cgroup paths of a process, one per hierarchy. */
export async function readCgroupPaths(
  procRoot: string,
  pid: number,
  what: string,
  signal: AbortSignal,
): Promise<string[]> {
  const file = `${procRoot}/${pid}/cgroup`;
  let text: string;
  try {
    text = await readFile(file, { encoding: 'utf8', signal });
  } catch (e) {
    signal.throwIfAborted();
    throw procFsError(e, what, pid, file);
  }
  if (text.length > MAX_CGROUP_FILE_BYTES) {
    throw new FailedPreconditionError(
      `${what}: ${file} is larger than ${MAX_CGROUP_FILE_BYTES} bytes`,
    );
  }
  return parseCgroupFile(text);
}

export function parseCgroupFile(text: string): string[] {
  const paths: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const first = line.indexOf(':');
    const second = first < 0 ? -1 : line.indexOf(':', first + 1);
    if (second < 0) continue;
    paths.push(line.slice(second + 1));
  }
  return paths;
}

/**
 * The one container id the paths name, or null when no path matches (not in a container). Two
 * different ids (or pod UIDs) across hierarchies is an error: it is ambiguous, and attestation must
 * not guess.
 */
export function findContainer(
  paths: readonly string[],
  matchers: readonly RegExp[],
  what: string,
): ContainerMatch | null {
  let found: ContainerMatch | null = null;
  for (const p of paths) {
    const m = matchPath(p, matchers);
    if (!m) continue;
    if (found && found.containerId !== m.containerId) {
      throw new FailedPreconditionError(
        `${what}: the cgroups name more than one container (${found.containerId}, ${m.containerId})`,
      );
    }
    if (found && found.podUid !== m.podUid) {
      throw new FailedPreconditionError(
        `${what}: the cgroups name more than one pod (${found.podUid ?? 'none'}, ${m.podUid ?? 'none'})`,
      );
    }
    found = m;
  }
  return found;
}

function matchPath(path: string, matchers: readonly RegExp[]): ContainerMatch | null {
  for (const re of matchers) {
    const g = re.exec(path)?.groups;
    const id = g?.id;
    if (!id) continue;
    const podUid = g.poduid ? canonicalPodUid(g.poduid) : undefined;
    return podUid ? { containerId: id.toLowerCase(), podUid } : { containerId: id.toLowerCase() };
  }
  return null;
}

/** systemd slices write pod UIDs with underscores; Kubernetes writes them with dashes. */
export function canonicalPodUid(raw: string): string {
  return raw.toLowerCase().replace(/[^0-9a-f]/g, '-');
}

/**
 * Compiles an operator-supplied matcher: it must be a valid regex with a named group `id`.
 * Returns an error message instead of throwing, for the config schema.
 */
export function compileMatcher(source: string): RegExp | string {
  let re: RegExp;
  try {
    re = new RegExp(source);
  } catch (e) {
    return `invalid regex: ${(e as Error).message}`;
  }
  if (!/\(\?<id>/.test(source)) return 'the regex needs a named group (?<id>...)';
  return re;
}

const HEX64 = '[0-9a-f]{64}';
/** Leading `/..` segments: the path of a process outside the reader's cgroup namespace. */
export const CGROUPNS_PREFIX = '^(?:/\\.\\.)*';

/** Docker's own cgroup layouts (cgroupfs and systemd drivers, v1 and v2, cri-dockerd pods). */
export const defaultDockerMatchers: readonly RegExp[] = [
  // systemd driver: /system.slice/docker-<id>.scope (seen as /../docker-<id>.scope from a
  // container in its own cgroup namespace next to it), plus any sub-cgroups of the container.
  new RegExp(`${CGROUPNS_PREFIX}(?:/system\\.slice)?/docker-(?<id>${HEX64})\\.scope(?:/.*)?$`),
  // cgroupfs driver: /docker/<id>, plus sub-cgroups.
  new RegExp(`${CGROUPNS_PREFIX}/docker/(?<id>${HEX64})(?:/.*)?$`),
  // Pods run by Docker (cri-dockerd, systemd driver): /kubepods.slice/.../docker-<id>.scope.
  // The cgroupfs kubepods form carries no runtime name, so it is left to the k8s attestor.
  new RegExp(`${CGROUPNS_PREFIX}/kubepods\\.slice/(?:[^/]+/)*docker-(?<id>${HEX64})\\.scope$`),
];

/** Regexes with a named group `id`, tried in order on each cgroup path. */
export const cgroupMatchers = z
  .array(z.string())
  .min(1)
  .transform((list, ctx) => {
    const out: RegExp[] = [];
    list.forEach((source, i) => {
      const re = compileMatcher(source);
      if (typeof re === 'string') ctx.addIssue({ code: 'custom', message: re, path: [i] });
      else out.push(re);
    });
    return out;
  });
