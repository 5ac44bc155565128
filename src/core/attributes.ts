// A workload's attributes beyond its selectors (docs/posture.md): the fingerprint of what runs.
// The agent collects them; they travel to the server as flat strings (release.proto and
// svid.proto `attributes`) under the keys below, and the server turns them — with its own node
// record and posture reports — into the typed facts that conditions read (`binary.sha256`,
// `libraries`, `kernel.release`, `image.digest`, `node.*`, `posture.*`).
import { normalizeDigest } from './posture.ts';

export const ATTR_BINARY_SHA256 = 'binary.sha256';
export const ATTR_KERNEL_RELEASE = 'kernel.release';
export const ATTR_IMAGE_DIGEST = 'image.digest';
/** `library.<n>` = "sha256:<hex> <path>", n = 0, 1, …: one per mapped shared library. */
export const ATTR_LIBRARY_PREFIX = 'library.';

export const ATTRIBUTE_LIMITS = {
  /** Shared libraries reported per process: the first by path (the rest are left out). */
  libraries: 32,
  /** Bytes of one library hashed at most (larger ones are reported without a hash). */
  libraryBytes: 256 * 1024 * 1024,
  pathBytes: 512,
  kernelReleaseBytes: 128,
} as const;

export interface Library {
  readonly path: string;
  /** "sha256:<hex>", or "" when not hashed (too large, unreadable). */
  readonly sha256: string;
}

/** The typed attributes the agent collects for a process: */
export interface WorkloadAttributes {
  readonly binarySha256?: string;
  readonly libraries?: readonly Library[];
  readonly kernelRelease?: string;
  readonly imageDigest?: string;
}

/** Flat strings for the wire. */
export function flattenAttributes(a: WorkloadAttributes): Record<string, string> {
  const out: Record<string, string> = {};
  if (a.binarySha256) out[ATTR_BINARY_SHA256] = a.binarySha256;
  if (a.kernelRelease) out[ATTR_KERNEL_RELEASE] = a.kernelRelease;
  if (a.imageDigest) out[ATTR_IMAGE_DIGEST] = a.imageDigest;
  for (const [i, lib] of (a.libraries ?? []).slice(0, ATTRIBUTE_LIMITS.libraries).entries())
    out[`${ATTR_LIBRARY_PREFIX}${i}`] = `${lib.sha256 || '-'} ${lib.path}`;
  return out;
}

/**
 * Typed attributes from flat strings (untrusted: from the agent). Unknown keys are ignored (they
 * stay visible as `client.attributes`); malformed digests are dropped, never passed on.
 */
export function parseFlatAttributes(flat: Readonly<Record<string, string>>): WorkloadAttributes {
  const libraries: Library[] = [];
  for (let i = 0; i < ATTRIBUTE_LIMITS.libraries; i++) {
    const v = flat[`${ATTR_LIBRARY_PREFIX}${i}`];
    if (v === undefined) break;
    const space = v.indexOf(' ');
    if (space < 0) continue;
    const digest = normalizeDigest(v.slice(0, space));
    libraries.push({ sha256: digest ?? '', path: v.slice(space + 1, space + 1 + 512) });
  }
  const binary = flat[ATTR_BINARY_SHA256];
  const image = flat[ATTR_IMAGE_DIGEST];
  const kernel = flat[ATTR_KERNEL_RELEASE];
  const binarySha256 = binary ? normalizeDigest(binary) : null;
  const imageDigest = image ? normalizeDigest(image) : null;
  return {
    ...(binarySha256 ? { binarySha256 } : {}),
    ...(imageDigest ? { imageDigest } : {}),
    ...(kernel ? { kernelRelease: kernel.slice(0, ATTRIBUTE_LIMITS.kernelReleaseBytes) } : {}),
    libraries,
  };
}

/** A stable key of a flat attribute set (sorted keys): equal sets, equal keys. */
export function attributesKey(a: Readonly<Record<string, string>>): string {
  return JSON.stringify(
    Object.keys(a)
      .sort()
      .map((k) => [k, a[k]]),
  );
}
