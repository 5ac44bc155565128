// The workload's attributes beyond selectors (core/attributes.ts, docs/posture.md): the
// executable's digest (from the unix attestor's selector), the shared libraries the process maps
// with their digests, the kernel release, and the container image digest (from the docker or
// k8s attestor's selectors). Everything is bounded: at most ATTRIBUTE_LIMITS.libraries
// libraries, each hashed only below a size limit, and hashed once per (dev, inode, size, mtime,
// ctime) — a process re-checked while it runs costs a read of its maps and a stat per library.
import { readFileSync } from 'node:fs';
import {
  ATTRIBUTE_LIMITS,
  flattenAttributes,
  type Library,
  type WorkloadAttributes,
} from '../../core/attributes.ts';
import { normalizeDigest } from '../../core/posture.ts';
import type { Selector } from '../../core/selector.ts';
import { ExecutableHasher } from '../../plugins/workload-attestors/unix/exe-hash.ts';
import type { CallerProcess } from './caller.ts';

/** Collects a process's attributes as flat strings (for the wire); never throws. */
export interface AttributeSource {
  collect(
    caller: CallerProcess,
    selectors: readonly Selector[],
    signal: AbortSignal,
  ): Promise<Readonly<Record<string, string>>>;
}

export interface WorkloadAttributeOptions {
  readonly procRoot?: string;
  /** The node's kernel release (os.release(), read by the composition root). */
  readonly kernelRelease: string;
  /** Collect mapped libraries (default true). */
  readonly libraries?: boolean;
}

/** Bytes of /proc/<pid>/maps read at most (a process with huge maps is cut there). */
const MAX_MAPS_BYTES = 4 * 1024 * 1024;

export function workloadAttributeSource(o: WorkloadAttributeOptions): AttributeSource {
  const procRoot = o.procRoot ?? '/proc';
  const hasher = new ExecutableHasher(ATTRIBUTE_LIMITS.libraryBytes);
  return {
    async collect(caller, selectors, signal) {
      const binary = selectorValue(selectors, 'unix', 'sha256:');
      const image = imageDigest(selectors);
      const libs =
        o.libraries === false ? [] : await libraries(procRoot, caller.pid, hasher, signal);
      const a: WorkloadAttributes = {
        ...(binary ? { binarySha256: `sha256:${binary}` } : {}),
        ...(image ? { imageDigest: image } : {}),
        kernelRelease: o.kernelRelease.slice(0, ATTRIBUTE_LIMITS.kernelReleaseBytes),
        libraries: libs,
      };
      return Object.freeze(flattenAttributes(a));
    },
  };
}

function selectorValue(selectors: readonly Selector[], type: string, prefix: string): string {
  for (const s of selectors) {
    if (s.type === type && s.value.startsWith(prefix)) return s.value.slice(prefix.length);
  }
  return '';
}

/** docker: the image config digest; k8s: the container's resolved image (imageID). */
function imageDigest(selectors: readonly Selector[]): string {
  const docker = selectorValue(selectors, 'docker', 'image_config_digest:');
  if (docker) return normalizeDigest(docker) ?? '';
  for (const s of selectors) {
    if (s.type !== 'k8s' || !s.value.startsWith('container-image:')) continue;
    const d = normalizeDigest(s.value.slice('container-image:'.length));
    if (d) return d;
  }
  return '';
}

/**
 * File-backed executable mappings other than the main executable, sorted by path: the shared
 * libraries the process runs (the dynamic loader included). Not in mapping order: ASLR places
 * them differently in every process, and the same program must report the same attributes (they
 * are part of the agent's credential cache key and of what conditions see).
 */
export function mappedLibraries(maps: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  let first = true;
  for (const line of maps.split('\n')) {
    // address perms offset dev inode path
    const m = /^\S+\s+(\S{4})\s+\S+\s+\S+\s+(\d+)\s+(\/.*)$/.exec(line);
    if (!m) continue;
    const [, perms, inode, path] = m as unknown as [string, string, string, string];
    if (first) {
      // The first file-backed mapping is the executable itself (reported as binary.sha256).
      first = false;
      seen.add(path);
      continue;
    }
    if (perms[2] !== 'x' || inode === '0' || seen.has(path)) continue;
    seen.add(path);
    out.push(path);
  }
  return out.sort();
}

async function libraries(
  procRoot: string,
  pid: number,
  hasher: ExecutableHasher,
  signal: AbortSignal,
): Promise<Library[]> {
  let maps: string;
  try {
    maps = readFileSync(`${procRoot}/${pid}/maps`, 'utf8').slice(0, MAX_MAPS_BYTES);
  } catch {
    return []; // a process we may not inspect has no libraries to report, not an error
  }
  const paths = mappedLibraries(maps).slice(0, ATTRIBUTE_LIMITS.libraries);
  return Promise.all(
    paths.map(async (path): Promise<Library> => {
      const clipped = path.slice(0, ATTRIBUTE_LIMITS.pathBytes);
      try {
        // Through the process's root, so a container's libraries are its own files.
        const hex = await hasher.hash(`${procRoot}/${pid}/root${path}`, pid, signal);
        return { path: clipped, sha256: `sha256:${hex}` };
      } catch {
        signal.throwIfAborted();
        return { path: clipped, sha256: '' };
      }
    }),
  );
}
