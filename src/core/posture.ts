// Posture: what vulnerability scanners found in an image or a binary, per subject (an image
// digest or an executable's sha256), as entry conditions and access policies read it
// (`posture.critical == 0`). The scanner formats are parsed in server/posture/formats/.

export const POSTURE_SCANNERS = ['trivy', 'grype', 'osv'] as const;
export type PostureScanner = (typeof POSTURE_SCANNERS)[number];

export const SEVERITIES = ['critical', 'high', 'medium', 'low', 'unknown'] as const;
export type Severity = (typeof SEVERITIES)[number];

export type SeverityCounts = Record<Severity, number>;

/** What an import states about one subject. */
export interface PostureFindings {
  /** "sha256:<64 lowercase hex>". */
  readonly subject: string;
  readonly kind: 'image' | 'binary';
  /** The scanned artifact as the scanner names it (informational, bounded). */
  readonly artifact: string;
  readonly counts: SeverityCounts;
  /** Findings with a fixed version available. */
  readonly fixable: number;
  /** Epoch ms the report states it was scanned, or null. */
  readonly scannedAt: number | null;
}

/** A stored report: the findings of the last import that named the subject. */
export interface PostureReport extends Omit<PostureFindings, 'scannedAt'> {
  readonly scanner: PostureScanner;
  /** Epoch ms: the report's scan time, else the import time. */
  readonly scannedAt: number;
  readonly importVersion: number;
  readonly importedAt: number;
}

export const POSTURE_LIMITS = {
  /** Bytes of one scanner report. */
  reportBytes: 8 * 1024 * 1024,
  /** Subjects one import may name. */
  subjects: 256,
  /** Findings counted in one import (all subjects). */
  findings: 100_000,
  artifactBytes: 512,
} as const;

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** "sha256:<hex>" from a digest, a bare hex sha256 or a "repo@sha256:<hex>" reference; else null. */
export function normalizeDigest(text: string): string | null {
  const at = text.lastIndexOf('@');
  const s = (at >= 0 ? text.slice(at + 1) : text).trim().toLowerCase();
  if (DIGEST.test(s)) return s;
  if (/^[0-9a-f]{64}$/.test(s)) return `sha256:${s}`;
  return null;
}

export function emptyCounts(): SeverityCounts {
  return { critical: 0, high: 0, medium: 0, low: 0, unknown: 0 };
}

/** A scanner's severity word → ours (CVSS words; "negligible" counts as low). */
export function severityOf(text: unknown): Severity {
  const s = typeof text === 'string' ? text.trim().toLowerCase() : '';
  if (s === 'critical') return 'critical';
  if (s === 'high') return 'high';
  if (s === 'medium' || s === 'moderate') return 'medium';
  if (s === 'low' || s === 'negligible') return 'low';
  return 'unknown';
}

/** `posture` as conditions see it; `scanned` false (and zero counts) for a subject with no report. */
export function postureFacts(r: PostureReport | undefined): Record<string, unknown> {
  if (!r) {
    return {
      scanned: false,
      critical: 0n,
      high: 0n,
      medium: 0n,
      low: 0n,
      unknown: 0n,
      fixable: 0n,
      scanner: '',
      scanned_at: 0n,
      import_version: 0n,
      subject: '',
    };
  }
  return {
    scanned: true,
    critical: BigInt(r.counts.critical),
    high: BigInt(r.counts.high),
    medium: BigInt(r.counts.medium),
    low: BigInt(r.counts.low),
    unknown: BigInt(r.counts.unknown),
    fixable: BigInt(r.fixable),
    scanner: r.scanner,
    scanned_at: BigInt(Math.floor(r.scannedAt / 1000)),
    import_version: BigInt(r.importVersion),
    subject: r.subject,
  };
}
