// Conformance: PostureStore — an import bumps the version and replaces the reports of the subjects
// it names (others stay), list/get read them back exactly, the revision is the last import
// version, an import announces `access` after commit, and a rolled-back one leaves nothing.
import assert from 'node:assert/strict';
import type { PostureFindings, PostureReport } from '../../core/posture.ts';
import { type Cases, T0 } from './fixtures.ts';

const subject = (c: string): string => `sha256:${c.repeat(64)}`;

function findings(c: string, critical: number, over: Partial<PostureFindings> = {}) {
  return {
    subject: subject(c),
    kind: 'image',
    artifact: `registry.example.org/app@${subject(c)}`,
    counts: { critical, high: 2, medium: 3, low: 4, unknown: 5 },
    fixable: 6,
    scannedAt: T0 - 1000,
    ...over,
  } satisfies PostureFindings;
}

export const postureCases: Cases = {
  'starts empty at revision 0; an import stores every subject at the next version': async (s) => {
    assert.equal(await s.posture.revision(), 0);
    assert.deepEqual(await s.posture.list(), []);
    assert.equal(await s.posture.get(subject('a')), undefined);
    const out = await s.posture.import(
      'trivy',
      [findings('b', 1), findings('a', 0, { kind: 'binary', artifact: '', scannedAt: null })],
      T0,
    );
    assert.equal(out.version, 1);
    const a: PostureReport = {
      subject: subject('a'),
      kind: 'binary',
      artifact: '',
      counts: { critical: 0, high: 2, medium: 3, low: 4, unknown: 5 },
      fixable: 6,
      // No scan time in the report: the import time stands in.
      scannedAt: T0,
      scanner: 'trivy',
      importVersion: 1,
      importedAt: T0,
    };
    const b: PostureReport = {
      ...findings('b', 1),
      scannedAt: T0 - 1000,
      scanner: 'trivy',
      importVersion: 1,
      importedAt: T0,
    };
    assert.deepEqual(out.reports, [b, a]);
    assert.equal(await s.posture.revision(), 1);
    // Listed by subject.
    assert.deepEqual(await s.posture.list(), [a, b]);
    assert.deepEqual(await s.posture.get(subject('a')), a);
    assert.deepEqual(await s.posture.get(subject('b')), b);
  },

  'an import replaces the reports of the subjects it names; the others stay': async (s) => {
    await s.posture.import('trivy', [findings('a', 3), findings('b', 1)], T0);
    const second = await s.posture.import(
      'grype',
      [findings('a', 0, { fixable: 0 }), findings('c', 7)],
      T0 + 5,
    );
    assert.equal(second.version, 2);
    assert.equal(await s.posture.revision(), 2);
    const list = await s.posture.list();
    assert.deepEqual(
      list.map((r) => [r.subject, r.scanner, r.counts.critical, r.fixable, r.importVersion]),
      [
        [subject('a'), 'grype', 0, 0, 2],
        [subject('b'), 'trivy', 1, 6, 1],
        [subject('c'), 'grype', 7, 6, 2],
      ],
    );
    assert.equal((await s.posture.get(subject('a')))?.importedAt, T0 + 5);
    // An import naming no subject still counts as one (audited, versioned).
    assert.deepEqual(await s.posture.import('osv', [], T0 + 9), { version: 3, reports: [] });
    assert.equal((await s.posture.list()).length, 3);
  },

  'an import announces "access" after commit; a rolled-back one stores nothing': async (s) => {
    const seen: string[] = [];
    const off = s.notifications.subscribe('access', (topic, source) => {
      seen.push(`${topic}:${source}`);
    });
    await s.posture.import('trivy', [findings('a', 1)], T0);
    assert.deepEqual(seen, ['access:local']);
    seen.length = 0;
    await assert.rejects(
      s.transaction(async (tx) => {
        await tx.posture.import('trivy', [findings('a', 9), findings('b', 9)], T0 + 1);
        throw new Error('roll back');
      }),
      /roll back/,
    );
    assert.deepEqual(seen, []);
    assert.equal(await s.posture.revision(), 1);
    assert.deepEqual(
      (await s.posture.list()).map((r) => [r.subject, r.counts.critical]),
      [[subject('a'), 1]],
    );
    off();
  },
};
