// One entry point for the scanner formats: bounds the size, parses JSON, dispatches by format,
// attaches the findings to subjects. Pure: nothing is stored unless this returns.
import { InvalidArgumentError } from '../../../core/errors.ts';
import {
  POSTURE_LIMITS,
  POSTURE_SCANNERS,
  type PostureFindings,
  type PostureScanner,
} from '../../../core/posture.ts';
import { attach } from './findings.ts';
import { parseGrype } from './grype.ts';
import { parseReportJson } from './json-reader.ts';
import { parseOsv } from './osv.ts';
import { parseTrivy } from './trivy.ts';

const PARSERS = { trivy: parseTrivy, grype: parseGrype, osv: parseOsv } as const;

export function checkScanner(format: string): PostureScanner {
  if (!(POSTURE_SCANNERS as readonly string[]).includes(format)) {
    throw new InvalidArgumentError(
      `format: "${format.slice(0, 32)}" is not one of ${POSTURE_SCANNERS.join(', ')}`,
    );
  }
  return format as PostureScanner;
}

export function parsePostureReport(
  format: string,
  bytes: Uint8Array,
  subjects: readonly string[],
): { scanner: PostureScanner; findings: PostureFindings[] } {
  const scanner = checkScanner(format);
  if (bytes.length > POSTURE_LIMITS.reportBytes) {
    throw new InvalidArgumentError(
      `report: ${bytes.length} bytes, more than the limit of ${POSTURE_LIMITS.reportBytes}`,
    );
  }
  if (subjects.length > POSTURE_LIMITS.subjects) {
    throw new InvalidArgumentError(`subjects: at most ${POSTURE_LIMITS.subjects}`);
  }
  const parsed = PARSERS[scanner](parseReportJson(bytes));
  return { scanner, findings: attach(parsed, subjects) };
}
