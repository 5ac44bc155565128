// AccessPolicyService.TestAccess and WhatIfAccess: thin translations to server/access. The rest
// of AccessPolicyService (CRUD, import) is registered beside these; the composition root spreads
// both partial implementations into one registration.
import type { ServiceImpl } from '@connectrpc/connect';
import type { Clock } from '../../../core/clock.ts';
import { InvalidArgumentError } from '../../../core/errors.ts';
import type { AccessPolicyService as AccessPolicyApi } from '../../../../proto/gen/tessera/v1/access_pb.js';
import type { PolicyDecider } from '../../access/decider.ts';
import { whatIf, type ProposedModel, type WhatIfDeps } from '../../access/what-if-replay.ts';
import {
  decisionToWire,
  testRequestFromWire,
  whatIfToWire,
} from '../../../wire/access-decision.ts';

/** Access documents are at most 1 MiB (ImportAccessDocumentRequest, WhatIfAccessRequest). */
export const MAX_ACCESS_DOCUMENT_BYTES = 1024 * 1024;

/**
 * Parses a YAML access document (server/access/access-document.ts parseAccessDocument); throws
 * InvalidArgumentError naming the bad field. Only the parts what-if reads are named here.
 */
export type AccessDocumentParser = (text: string) => ProposedModel;

export interface AccessDecisionHandlerDeps {
  readonly decider: Pick<PolicyDecider, 'decide' | 'sync'>;
  readonly whatIf: Omit<WhatIfDeps, 'clock'>;
  readonly clock: Clock;
  readonly parseDocument: AccessDocumentParser;
}

export type AccessDecisionHandlers = Pick<
  ServiceImpl<typeof AccessPolicyApi>,
  'testAccess' | 'whatIfAccess'
>;

export function accessDecisionHandlers(deps: AccessDecisionHandlerDeps): AccessDecisionHandlers {
  return {
    async testAccess(req) {
      const request = testRequestFromWire(req, deps.clock.now());
      // Read-your-writes: a policy changed through this server just before is already decided on.
      await deps.decider.sync();
      return { decision: decisionToWire(deps.decider.decide(request)) };
    },
    async whatIfAccess(req) {
      if (req.document.trim() === '') throw new InvalidArgumentError('document: required');
      if (Buffer.byteLength(req.document) > MAX_ACCESS_DOCUMENT_BYTES)
        throw new InvalidArgumentError(`document: larger than ${MAX_ACCESS_DOCUMENT_BYTES} bytes`);
      const since = Number(req.sinceMs);
      if (!Number.isSafeInteger(since) || since < 0)
        throw new InvalidArgumentError('since_ms: must not be negative (0 = 24 hours)');
      const proposed = deps.parseDocument(req.document);
      const report = await whatIf({ ...deps.whatIf, clock: deps.clock }, proposed, since);
      return whatIfToWire(report);
    },
  };
}
