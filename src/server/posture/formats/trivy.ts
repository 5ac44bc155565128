// trivy `--format json` (SchemaVersion 2): ArtifactName, CreatedAt, Metadata.ImageID and
// Metadata.RepoDigests name the image; Results[].Vulnerabilities[] hold the findings, each with
// Severity (CRITICAL … UNKNOWN) and FixedVersion when a fix exists.
import { severityOf } from '../../../core/posture.ts';
import { type JsonAt, timeAt } from './json-reader.ts';
import { type ParsedReport, Tally, digestsOf } from './findings.ts';

export function parseTrivy(doc: JsonAt): ParsedReport {
  doc.object();
  const schema = doc.get('SchemaVersion');
  if (schema.present && schema.value !== 2) schema.fail('only SchemaVersion 2 is understood');
  const meta = doc.get('Metadata');
  const digests = meta.present
    ? [meta.get('ImageID').string(), ...meta.get('RepoDigests').strings()]
    : [];
  const tally = new Tally();
  const results = doc.get('Results');
  for (const result of results.items()) {
    for (const v of result.get('Vulnerabilities').items()) {
      v.get('VulnerabilityID').requiredString();
      tally.add(severityOf(v.get('Severity').string()), v.get('FixedVersion').string() !== '');
    }
  }
  return {
    imageDigests: digestsOf(digests),
    artifact: doc.get('ArtifactName').string(),
    counts: tally.counts,
    fixable: tally.fixable,
    scannedAt: timeAt(doc.get('CreatedAt')),
  };
}
