// grype `-o json`: matches[] with vulnerability.severity (Critical, High, Medium, Low,
// Negligible, Unknown) and vulnerability.fix.state ("fixed" when a fix exists); source.target
// is an object for images (imageID, manifestDigest, repoDigests, userInput) and a path string
// for directories and files; descriptor.timestamp is the scan time.
import { severityOf } from '../../../core/posture.ts';
import { type JsonAt, timeAt } from './json-reader.ts';
import { type ParsedReport, Tally, digestsOf } from './findings.ts';

export function parseGrype(doc: JsonAt): ParsedReport {
  doc.object();
  const tally = new Tally();
  const matches = doc.get('matches');
  if (!matches.present) matches.fail('is required');
  for (const m of matches.items()) {
    const v = m.get('vulnerability');
    v.get('id').requiredString();
    const fix = v.get('fix');
    const fixable = fix.present && fix.get('state').string() === 'fixed';
    tally.add(severityOf(v.get('severity').string()), fixable);
  }
  const target = doc.get('source').present ? doc.get('source').get('target') : undefined;
  let digests: string[] = [];
  let artifact = '';
  if (target?.present) {
    if (typeof target.value === 'string') {
      artifact = target.value;
    } else {
      artifact = target.get('userInput').string();
      digests = [
        target.get('imageID').string(),
        target.get('manifestDigest').string(),
        ...target.get('repoDigests').strings(),
      ];
    }
  }
  const descriptor = doc.get('descriptor');
  return {
    imageDigests: digestsOf(digests),
    artifact,
    counts: tally.counts,
    fixable: tally.fixable,
    scannedAt: descriptor.present ? timeAt(descriptor.get('timestamp')) : null,
  };
}
