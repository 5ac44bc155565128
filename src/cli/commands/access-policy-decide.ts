// The decision's subcommands of `tessera access-policy`: `test` (access-policy-test.ts) and
// `what-if` (access-policy-what-if.ts). The group itself, with the model's subcommands, is
// access-policy.ts's; it calls registerAccessPolicyDecide.
import type { Command } from 'commander';
import type { CliIo } from '../context.ts';
import { registerAccessPolicyTest } from './access-policy-test.ts';
import { registerAccessPolicyWhatIf } from './access-policy-what-if.ts';

/** Adds `test` and `what-if` to the `access-policy` group. */
export function registerAccessPolicyDecide(group: Command, io: CliIo): void {
  registerAccessPolicyTest(group, io);
  registerAccessPolicyWhatIf(group, io);
}
