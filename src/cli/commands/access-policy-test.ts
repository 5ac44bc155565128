// `tessera access-policy test`: the decision for a client and server workload, now or at a given
// time, with the deciding policy and the failing condition; releases nothing (docs/access.md
// "Testing a policy and what-if"). A denial is a result, not an error: exit 0, unless
// `--expect allow|deny` is given and the decision differs (exit 7, failed precondition).
import { type Command, Option } from 'commander';
import { InvalidArgumentError } from '../../core/errors.ts';
import { AccessPolicyService, type AccessDecision } from '../../client/api/access.ts';
import { adminAction, adminCommand, collect, type CliIo } from '../context.ts';
import { CliExit } from '../exit-codes.ts';
import type { Printer } from '../output.ts';
import { parseAtTime } from './access-policy-time.ts';

interface TestFlags {
  client: string;
  server: string;
  selector?: string[];
  attr?: string[];
  method?: string;
  path?: string;
  host?: string;
  at?: string;
  expect?: 'allow' | 'deny';
}

/** k=v pairs → a record; a repeated name is an error. */
export function attributePairs(list: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of list ?? []) {
    const i = p.indexOf('=');
    if (i <= 0)
      throw new InvalidArgumentError(`--attr: expected NAME=VALUE, got "${p.slice(0, 64)}"`);
    const k = p.slice(0, i);
    if (Object.hasOwn(out, k)) throw new InvalidArgumentError(`--attr: "${k}" is repeated`);
    out[k] = p.slice(i + 1);
  }
  return out;
}

export function registerAccessPolicyTest(group: Command, io: CliIo): void {
  const cmd = adminCommand(
    group,
    'test',
    'the decision for a client and server workload (deciding policy, failing condition); releases nothing',
    io,
  )
    .requiredOption('--client <spiffe-id>', 'the client workload SPIFFE ID')
    .requiredOption('--server <name>', 'the server workload')
    .option('--selector <type:value>', 'a selector of the client (repeatable)', collect)
    .option('--attr <name=value>', 'an attested attribute of the client (repeatable)', collect)
    .option('--method <method>', 'HTTP request method (request.method)')
    .option('--path <path>', 'HTTP request path (request.path)')
    .option('--host <host>', 'HTTP request host (request.host)')
    .option('--at <time>', 'decide at this time: RFC 3339, or relative like -2h (default now)')
    .addOption(
      new Option('--expect <decision>', 'exit 7 unless the decision is this').choices([
        'allow',
        'deny',
      ]),
    );
  adminAction<TestFlags>(cmd, io, async ({ opts, client, out }) => {
    const http = opts.method !== undefined || opts.path !== undefined || opts.host !== undefined;
    const at = opts.at === undefined ? 0 : parseAtTime(opts.at, Date.now());
    const res = await client(AccessPolicyService).testAccess({
      client: opts.client,
      server: opts.server,
      selectors: opts.selector ?? [],
      attributes: attributePairs(opts.attr),
      ...(http
        ? { request: { method: opts.method ?? '', path: opts.path ?? '', host: opts.host ?? '' } }
        : {}),
      at: BigInt(at),
    });
    const d = res.decision;
    if (!d) throw new InvalidArgumentError('the server returned no decision');
    printDecision(out, d, at);
    const got = d.allowed ? 'allow' : 'deny';
    if (opts.expect && opts.expect !== got)
      throw new CliExit('failed_precondition', `expected ${opts.expect}, got ${got} (${d.reason})`);
  });
}

export function decisionJson(d: AccessDecision) {
  return {
    decision: d.allowed ? 'allow' : 'deny',
    reason: d.reason,
    policy: d.policy || null,
    credentialProvider: d.credentialProvider || null,
    failedCondition: d.failedCondition || null,
  };
}

function printDecision(out: Printer, d: AccessDecision, at: number): void {
  const when = at === 0 ? null : new Date(at).toISOString();
  if (out.json) {
    out.printJson({ ...decisionJson(d), at: when });
    return;
  }
  out.fields([
    ['Decision', d.allowed ? 'allow' : 'deny'],
    ['Reason', d.reason],
    ['Policy', d.policy],
    ['Credential provider', d.credentialProvider],
    ['Failed condition', d.failedCondition],
    ['At', when ?? 'now'],
  ]);
}
