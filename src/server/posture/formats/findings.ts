// What a parsed scanner report yields before it is attached to subjects: the counts of one
// artifact, the digests the report names for it, and the scan time. Shared by the formats.
import { InvalidArgumentError } from '../../../core/errors.ts';
import {
  POSTURE_LIMITS,
  emptyCounts,
  normalizeDigest,
  type PostureFindings,
  type Severity,
  type SeverityCounts,
} from '../../../core/posture.ts';

export interface ParsedReport {
  /** Image digests the report names ("sha256:<hex>"), deduplicated. */
  readonly imageDigests: readonly string[];
  readonly artifact: string;
  readonly counts: SeverityCounts;
  readonly fixable: number;
  readonly scannedAt: number | null;
}

/** Counts findings, bounded by POSTURE_LIMITS.findings. */
export class Tally {
  readonly counts: SeverityCounts = emptyCounts();
  fixable = 0;
  #n = 0;

  add(severity: Severity, fixable: boolean): void {
    if (++this.#n > POSTURE_LIMITS.findings) {
      throw new InvalidArgumentError(
        `report: more than ${POSTURE_LIMITS.findings} findings (the limit of one import)`,
      );
    }
    this.counts[severity]++;
    if (fixable) this.fixable++;
  }
}

/** The digests among `texts` (image IDs, repo digests), normalized and deduplicated. */
export function digestsOf(texts: readonly string[]): string[] {
  const out = new Set<string>();
  for (const t of texts) {
    const d = normalizeDigest(t);
    if (d) out.add(d);
  }
  return [...out];
}

/**
 * The findings to store: one per image digest the report names (kind image) and one per subject
 * the caller added (kind binary unless the report names it as an image). Refuses a report that
 * ends up naming no subject, or too many.
 */
export function attach(r: ParsedReport, extraSubjects: readonly string[]): PostureFindings[] {
  const subjects = new Map<string, 'image' | 'binary'>();
  for (const d of r.imageDigests) subjects.set(d, 'image');
  for (const [i, s] of extraSubjects.entries()) {
    const d = normalizeDigest(s);
    if (!d) throw new InvalidArgumentError(`subjects[${i}]: "${s.slice(0, 80)}" is not a sha256`);
    if (!subjects.has(d)) subjects.set(d, 'binary');
  }
  if (subjects.size === 0) {
    throw new InvalidArgumentError(
      'report: names no image digest; give the subjects (image digests or binary sha256) it is about',
    );
  }
  if (subjects.size > POSTURE_LIMITS.subjects) {
    throw new InvalidArgumentError(
      `report: names more than ${POSTURE_LIMITS.subjects} subjects (the limit of one import)`,
    );
  }
  const artifact = clip(r.artifact, POSTURE_LIMITS.artifactBytes);
  return [...subjects].map(([subject, kind]) => ({
    subject,
    kind,
    artifact,
    counts: { ...r.counts },
    fixable: r.fixable,
    scannedAt: r.scannedAt,
  }));
}

function clip(s: string, max: number): string {
  const b = Buffer.from(s, 'utf8');
  return b.length <= max
    ? s
    : b
        .subarray(0, max)
        .toString('utf8')
        .replace(/\uFFFD+$/, '');
}
