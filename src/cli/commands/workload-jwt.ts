// `tessera jwt fetch|validate`: JWT-SVIDs from the agent's Workload API (FetchJWTSVID,
// ValidateJWTSVID). Unlike `jwt mint`, these act as the calling workload, over the Workload API
// socket; the agent decides which identities this process may have.
import type { Command } from 'commander';
import { isTesseraError, TesseraError } from '../../core/errors.ts';
import type { CliIo } from '../context.ts';
import { jwtSvidJson } from '../views.ts';
import { WORKLOAD_CALL_TIMEOUT_MS, workloadAction, workloadCommand } from './workload-common.ts';

export function registerWorkloadJwt(jwt: Command, io: CliIo): void {
  const fetch = workloadCommand(jwt, 'fetch', "fetch this process's JWT-SVID", io)
    .requiredOption('--audience <aud...>', 'audience (aud claim), repeatable')
    .option('--spiffe-id <id>', "this SPIFFE ID's JWT-SVID (default: the default identity)");
  workloadAction<{ audience: string[]; spiffeId?: string }>(
    fetch,
    io,
    async ({ opts, client, out }) => {
      const svid = await client.fetchJWTSVID(
        { audience: opts.audience, ...(opts.spiffeId ? { spiffeId: opts.spiffeId } : {}) },
        { timeoutMs: WORKLOAD_CALL_TIMEOUT_MS },
      );
      const j = jwtSvidJson(svid);
      if (out.json) {
        out.printJson(j);
        return;
      }
      out.line(j.token);
      out.note(`SPIFFE ID: ${j.spiffeId}`);
      out.note(`expires at: ${j.expiresAt}`);
    },
  );

  const validate = workloadCommand(jwt, 'validate', 'validate a JWT-SVID', io)
    .requiredOption('--audience <aud>', 'the audience the token must carry (one)')
    .argument('<token>', 'the JWT-SVID (compact JWS)');
  workloadAction<{ audience: string }>(validate, io, async ({ opts, client, out }) => {
    const token = validate.args[0] ?? '';
    let res;
    try {
      res = await client.validateJWTSVID(token.trim(), opts.audience, {
        timeoutMs: WORKLOAD_CALL_TIMEOUT_MS,
      });
    } catch (e) {
      if (!isTesseraError(e) || e.code !== 'invalid_argument') throw e;
      const reason = e.message.replace(/^Workload API: /, '').replace(/^invalid JWT-SVID: /, '');
      if (out.json) out.printJson({ valid: false, reason });
      throw new TesseraError('invalid_argument', `invalid JWT-SVID: ${reason}`, { cause: e });
    }
    if (out.json) {
      out.printJson({ valid: true, spiffeId: res.spiffeId, claims: res.claims });
      return;
    }
    out.fields([
      ['SPIFFE ID', res.spiffeId],
      ...Object.keys(res.claims)
        .sort()
        .map((k): [string, string] => [k, claimText(k, res.claims[k])]),
    ]);
  });
}

/** A claim for people: strings as they are, times also as ISO-8601, the rest as JSON. */
function claimText(name: string, v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && (name === 'exp' || name === 'iat' || name === 'nbf')) {
    return `${v} (${new Date(v * 1000).toISOString()})`;
  }
  return JSON.stringify(v) ?? '';
}
