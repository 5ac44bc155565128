// The one conformance suite for Store implementations: every aggregate, every method, run
// against SQLite and PostgreSQL alike. The factory must return a fresh, empty store per call.
import { describe } from 'node:test';
import type { StoreFactory } from './conformance/fixtures.ts';
import { entryCases } from './conformance/entry-cases.ts';
import { changeCases } from './conformance/change-cases.ts';
import { nodeCases } from './conformance/node-cases.ts';
import { joinTokenCases } from './conformance/join-token-cases.ts';
import { bundleCases } from './conformance/bundle-cases.ts';
import { authorityCases } from './conformance/authority-cases.ts';
import { auditCases } from './conformance/audit-cases.ts';
import { transactionCases } from './conformance/transaction-cases.ts';

export type { StoreFactory };

export function storeConformance(name: string, factory: StoreFactory): void {
  describe(`${name} store conformance`, () => {
    describe('entries', () => entryCases(factory));
    describe('changes', () => changeCases(factory));
    describe('nodes', () => nodeCases(factory));
    describe('join tokens', () => joinTokenCases(factory));
    describe('bundles', () => bundleCases(factory));
    describe('authorities', () => authorityCases(factory));
    describe('audit', () => auditCases(factory));
    describe('transactions', () => transactionCases(factory));
  });
}
