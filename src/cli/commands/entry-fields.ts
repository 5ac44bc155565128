// The entry field flags shared by `entry create` and `entry update`, and their translation into
// a wire Entry plus the update mask naming exactly the fields that were given.
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { Command } from 'commander';
import type { EntrySchema } from '../../client/api/types.ts';
import { selectors, ttlSeconds, unixSeconds } from '../args.ts';

export interface EntryFlags {
  spiffeId?: string;
  parentId?: string;
  selector?: string[];
  x509Ttl?: string;
  jwtTtl?: string;
  /** false from --no-dns (update: clear the list). */
  dns?: string[] | false;
  federatesWith?: string[] | false;
  admin?: boolean;
  downstream?: boolean;
  hint?: string;
  condition?: string;
  disclose?: string;
  expiresAt?: string;
}

export function addEntryFieldOptions(cmd: Command, forUpdate: boolean): Command {
  // create checks these itself (with its own message); the help says so.
  const required = forUpdate ? '' : ' (required)';
  cmd
    .option('--spiffe-id <id>', `SPIFFE ID the entry issues${required}`)
    .option(
      '--parent-id <id>',
      `SPIFFE ID of the agent (or node alias) that may mint it${required}`,
    )
    .option(
      '--selector <type:value...>',
      `workload selector, repeatable (e.g. unix:uid:1000)${required}`,
    )
    .option('--x509-ttl <dur>', 'X509-SVID TTL, e.g. 1h (0 or unset: server default)')
    .option('--jwt-ttl <dur>', 'JWT-SVID TTL, e.g. 5m (0 or unset: server default)')
    .option('--dns <name...>', 'DNS SAN for X509-SVIDs, repeatable')
    .option('--federates-with <td...>', 'trust domain whose bundle workloads receive, repeatable')
    .option('--admin', 'SVIDs of this entry may call the admin API')
    .option('--downstream', 'SVIDs of this entry may act as a downstream CA')
    .option('--hint <hint>', 'hint for workloads choosing among several SVIDs')
    .option(
      '--condition <cel>',
      'CEL over the workload\'s attributes; no SVID while false (docs/posture.md; "" clears it)',
    )
    .option(
      '--disclose <paths>',
      'attributes disclosed in the signed identity document, comma-separated, e.g. ' +
        'image.digest,posture (docs/identity-document.md; "" clears it)',
    )
    .option('--expires-at <time>', 'entry expiry: RFC 3339 or Unix seconds; 0 or "never" = never');
  if (forUpdate) {
    cmd
      .option('--no-admin', 'clear the admin flag')
      .option('--no-downstream', 'clear the downstream flag')
      .option('--no-dns', 'remove all DNS names')
      .option('--no-federates-with', 'remove all federated trust domains');
  }
  return cmd;
}

type EntryInit = MessageInitShape<typeof EntrySchema>;

/** The wire entry carrying the given flags, and the mask of their field names. */
export function entryFromFlags(f: EntryFlags): { entry: EntryInit; mask: string[] } {
  // [mask field name, wire value or undefined when the flag was not given]
  const given: Partial<Record<string, unknown>> = {
    spiffe_id: f.spiffeId,
    parent_id: f.parentId,
    selectors: f.selector && selectors(f.selector),
    x509_svid_ttl: f.x509Ttl === undefined ? undefined : optionalTtl(f.x509Ttl, '--x509-ttl'),
    jwt_svid_ttl: f.jwtTtl === undefined ? undefined : optionalTtl(f.jwtTtl, '--jwt-ttl'),
    dns_names: f.dns === undefined ? undefined : f.dns || [],
    federates_with: f.federatesWith === undefined ? undefined : f.federatesWith || [],
    admin: f.admin,
    downstream: f.downstream,
    hint: f.hint,
    condition: f.condition,
    disclose: f.disclose === undefined ? undefined : discloseList(f.disclose),
    expires_at: f.expiresAt === undefined ? undefined : expiry(f.expiresAt),
  };
  const mask = Object.keys(given).filter((k) => given[k] !== undefined);
  const camel = (k: string): string => k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  const entry = Object.fromEntries(mask.map((k) => [camel(k), given[k]])) as EntryInit;
  return { entry, mask };
}

/** "0" keeps the server default, as on the wire. */
function optionalTtl(text: string, flag: string): number {
  return text.trim() === '0' ? 0 : ttlSeconds(text, flag);
}

function expiry(text: string): bigint {
  return text.trim() === 'never' ? 0n : unixSeconds(text, '--expires-at');
}

/** `image.digest,posture` → its paths (the server checks them against the known names). */
function discloseList(text: string): string[] {
  return text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
}
