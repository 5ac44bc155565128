// The three scanner formats from realistic samples (test/fixtures/posture/), and malformed or
// oversized reports refused with the JSON path or the limit named.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../../../core/errors.ts';
import { POSTURE_LIMITS } from '../../../core/posture.ts';
import { parsePostureReport } from './parse.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../../../../test/fixtures/posture');
const fixture = (name: string) => new Uint8Array(readFileSync(path.join(FIXTURES, name)));
const text = (s: string) => new TextEncoder().encode(s);
const BIN = `sha256:${'ab'.repeat(32)}`;

describe('posture report formats', () => {
  it('trivy: counts by severity, fixable, scan time, image ID and repo digest as subjects', () => {
    const { scanner, findings } = parsePostureReport('trivy', fixture('trivy-image.json'), []);
    assert.equal(scanner, 'trivy');
    assert.deepEqual(
      findings.map((f) => f.subject),
      [
        'sha256:5b8658701c6ab1b10a1b0b6b5a2d0c3f8a7b2c1d0e9f8a7b6c5d4e3f2a1b0c9d',
        'sha256:9f2a6c1e8d7b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f',
      ],
    );
    const f = findings[0]!;
    assert.equal(f.kind, 'image');
    assert.deepEqual(f.counts, { critical: 1, high: 1, medium: 1, low: 1, unknown: 0 });
    assert.equal(f.fixable, 3);
    assert.equal(f.scannedAt, Date.parse('2025-01-14T09:12:31.214573Z'));
    assert.equal(f.artifact, 'registry.example.org/payments/api:1.4.2');
  });

  it('trivy filesystem scan: the binary is a subject the import names', () => {
    const { findings } = parsePostureReport('trivy', fixture('trivy-binary-critical.json'), [BIN]);
    assert.equal(findings.length, 1);
    assert.equal(findings[0]!.subject, BIN);
    assert.equal(findings[0]!.kind, 'binary');
    assert.equal(findings[0]!.counts.critical, 1);
  });

  it('grype: severities (negligible is low), fix state, image digests', () => {
    const { findings } = parsePostureReport('grype', fixture('grype-image.json'), []);
    assert.equal(findings.length, 3);
    assert.deepEqual(findings[0]!.counts, { critical: 0, high: 1, medium: 1, low: 1, unknown: 0 });
    assert.equal(findings[0]!.fixable, 2);
    assert.equal(findings[0]!.scannedAt, Date.parse('2024-01-10T14:22:05.781Z'));
  });

  it('osv-scanner: one finding per group, CVSS scores to severities, fixed events', () => {
    const { findings } = parsePostureReport('osv', fixture('osv.json'), [BIN]);
    assert.deepEqual(findings[0]!.counts, { critical: 1, high: 1, medium: 1, low: 0, unknown: 0 });
    assert.equal(findings[0]!.fixable, 3);
    assert.equal(findings[0]!.artifact, '/src/app/package-lock.json');
  });

  it('refuses a report that names no subject', () => {
    assert.throws(
      () => parsePostureReport('osv', fixture('osv.json'), []),
      /names no image digest; give the subjects/,
    );
  });

  it('names the JSON path of a malformed field', () => {
    const bad = text(
      '{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"VulnerabilityID":"x","Severity":"LOW"},{"VulnerabilityID":"y","Severity":7}]}]}',
    );
    assert.throws(
      () => parsePostureReport('trivy', bad, [BIN]),
      (e: Error) =>
        e instanceof InvalidArgumentError &&
        e.message === 'report: Results[0].Vulnerabilities[1].Severity: must be a string',
    );
    assert.throws(
      () => parsePostureReport('grype', text('{"matches":{}}'), [BIN]),
      /report: matches: must be an array/,
    );
    assert.throws(
      () =>
        parsePostureReport('osv', text('{"results":[{"packages":[{"vulnerabilities":[{}]}]}]}'), [
          BIN,
        ]),
      /report: results\[0\]\.packages\[0\]\.vulnerabilities\[0\]\.id: is required/,
    );
    assert.throws(
      () => parsePostureReport('trivy', text('{"Results": ['), [BIN]),
      /report: not JSON/,
    );
    assert.throws(
      () => parsePostureReport('trivy', text('[]'), [BIN]),
      /report: \(top level\): must be an object/,
    );
  });

  it('refuses an unknown format, a bad subject and an oversized report, naming the limit', () => {
    assert.throws(
      () => parsePostureReport('snyk', text('{}'), []),
      /format: "snyk" is not one of trivy, grype, osv/,
    );
    assert.throws(
      () => parsePostureReport('osv', fixture('osv.json'), ['latest']),
      /subjects\[0\]: "latest" is not a sha256/,
    );
    const big = new Uint8Array(POSTURE_LIMITS.reportBytes + 1);
    assert.throws(
      () => parsePostureReport('trivy', big, [BIN]),
      new RegExp(`more than the limit of ${POSTURE_LIMITS.reportBytes}`),
    );
  });
});
