// The one conformance suite for Store implementations: every aggregate, every method, run
// against SQLite and PostgreSQL alike. The factory must return a fresh, empty store per call.
import { describe, it } from 'node:test';
import { type Cases, type StoreFactory, withStore } from './conformance/fixtures.ts';
import { entryCases } from './conformance/entry-cases.ts';
import { changeCases, commitNotificationCases } from './conformance/change-cases.ts';
import { nodeCases } from './conformance/node-cases.ts';
import { joinTokenCases } from './conformance/join-token-cases.ts';
import { revokedTokenCases } from './conformance/revoked-token-cases.ts';
import { bundleCases } from './conformance/bundle-cases.ts';
import { authorityCases } from './conformance/authority-cases.ts';
import { keyJournalCases } from './conformance/key-journal-cases.ts';
import { auditCases } from './conformance/audit-cases.ts';
import { transactionCases } from './conformance/transaction-cases.ts';
import { stsCases } from './conformance/sts-cases.ts';
import { federationCases } from './conformance/federation-cases.ts';
import { dpopProofCases } from './conformance/dpop-proof-cases.ts';
import { secretCases } from './conformance/secret-cases.ts';
import { accessCases } from './conformance/access-cases.ts';
import { leaseCases } from './conformance/lease-cases.ts';
import { accessRevisionCases } from './conformance/access-revision-cases.ts';
import { postureCases } from './conformance/posture-cases.ts';

export type { StoreFactory };

const suites: ReadonlyArray<[string, Cases]> = [
  ['entries', entryCases],
  ['changes', changeCases],
  ['commit notifications', commitNotificationCases],
  ['nodes', nodeCases],
  ['join tokens', joinTokenCases],
  ['revoked tokens', revokedTokenCases],
  ['bundles', bundleCases],
  ['authorities', authorityCases],
  ['key journal', keyJournalCases],
  ['audit', auditCases],
  ['transactions', transactionCases],
  ['sts issuers and trust policies', stsCases],
  ['federations', federationCases],
  ['dpop proofs', dpopProofCases],
  ['secrets', secretCases],
  ['access model', accessCases],
  ['leases', leaseCases],
  ['access revision', accessRevisionCases],
  ['posture', postureCases],
];

export function storeConformance(name: string, factory: StoreFactory): void {
  describe(`${name} store conformance`, () => {
    for (const [aggregate, cases] of suites) {
      describe(aggregate, () => {
        for (const [title, run] of Object.entries(cases)) {
          it(title, () => withStore(factory, run));
        }
      });
    }
  });
}
