// Posture reports ↔ the wire PostureReport (tessera/v1/posture.proto).
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { PostureReport } from '../core/posture.ts';
import type { PostureReportSchema } from '../../proto/gen/tessera/v1/posture_pb.js';

export function postureReportToWire(
  r: PostureReport,
): MessageInitShape<typeof PostureReportSchema> {
  return {
    subject: r.subject,
    kind: r.kind,
    scanner: r.scanner,
    artifact: r.artifact,
    critical: r.counts.critical,
    high: r.counts.high,
    medium: r.counts.medium,
    low: r.counts.low,
    unknown: r.counts.unknown,
    fixable: r.fixable,
    scannedAt: BigInt(r.scannedAt),
    importVersion: BigInt(r.importVersion),
    importedAt: BigInt(r.importedAt),
  };
}
