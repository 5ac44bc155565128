// Write-time validation of an access policy's decision fields (the admin service calls it before
// storing, so a policy the decider cannot use is never stored): the client pattern parses and
// the condition compiles within the CEL limits. Names, server and provider references are the
// admin service's to check.
import type { AccessPolicy } from '../../core/access.ts';
import { compileAccessCondition } from './access-condition.ts';
import { parseClientPattern } from './client-pattern.ts';

/** Throws InvalidArgumentError naming the field: "client: ..." or "condition: ...". */
export function checkAccessPolicy(p: Pick<AccessPolicy, 'client' | 'condition'>): void {
  parseClientPattern(p.client);
  compileAccessCondition(p.condition);
}
