// osv-scanner `--format json`: results[].packages[] with vulnerabilities[] (OSV records) and
// groups[] (aliases of one finding, with max_severity as a CVSS score). A group is one finding;
// a vulnerability in no group counts alone, its severity from database_specific.severity. A
// finding is fixable when an affected range of one of its records has a "fixed" event. The report
// names no image or binary: the import names its subjects.
import { type Severity, severityOf } from '../../../core/posture.ts';
import type { JsonAt } from './json-reader.ts';
import { type ParsedReport, Tally } from './findings.ts';

export function parseOsv(doc: JsonAt): ParsedReport {
  doc.object();
  const results = doc.get('results');
  if (!results.present) results.fail('is required');
  const tally = new Tally();
  let artifact = '';
  for (const result of results.items()) {
    const source = result.get('source');
    if (artifact === '' && source.present) artifact = source.get('path').string();
    for (const pkg of result.get('packages').items()) {
      const vulns = new Map<string, { severity: Severity; fixable: boolean }>();
      for (const v of pkg.get('vulnerabilities').items()) {
        const id = v.get('id').requiredString();
        const db = v.get('database_specific');
        vulns.set(id, {
          severity: severityOf(db.present ? db.get('severity').string() : ''),
          fixable: hasFix(v),
        });
      }
      const grouped = new Set<string>();
      for (const g of pkg.get('groups').items()) {
        const ids = g.get('ids').strings();
        ids.forEach((id) => grouped.add(id));
        const score = g.get('max_severity').string();
        tally.add(
          score === '' ? worst(ids.map((id) => vulns.get(id)?.severity)) : fromScore(score, g),
          ids.some((id) => vulns.get(id)?.fixable === true),
        );
      }
      for (const [id, v] of vulns) if (!grouped.has(id)) tally.add(v.severity, v.fixable);
    }
  }
  return {
    imageDigests: [],
    artifact,
    counts: tally.counts,
    fixable: tally.fixable,
    scannedAt: null,
  };
}

function hasFix(v: JsonAt): boolean {
  for (const a of v.get('affected').items())
    for (const r of a.get('ranges').items())
      for (const e of r.get('events').items()) if (e.get('fixed').string() !== '') return true;
  return false;
}

/** CVSS v3 qualitative ratings from a score. */
function fromScore(score: string, at: JsonAt): Severity {
  const n = Number(score);
  if (!Number.isFinite(n) || n < 0 || n > 10) at.get('max_severity').fail('must be a CVSS score');
  if (n >= 9) return 'critical';
  if (n >= 7) return 'high';
  if (n >= 4) return 'medium';
  if (n > 0) return 'low';
  return 'unknown';
}

const ORDER: readonly Severity[] = ['critical', 'high', 'medium', 'low', 'unknown'];

function worst(list: readonly (Severity | undefined)[]): Severity {
  for (const s of ORDER) if (list.includes(s)) return s;
  return severityOf('');
}
