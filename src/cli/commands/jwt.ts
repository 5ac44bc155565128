// `tessera jwt mint`: a JWT-SVID for any SPIFFE ID in the trust domain (admin socket). The token
// alone goes to stdout so it can be captured; its expiry goes to stderr. `jwt fetch|validate`
// (workload-jwt.ts) use the agent's Workload API instead.
import type { Command } from 'commander';
import { SvidService } from '../../client/api/svid.ts';
import { ttlSeconds } from '../args.ts';
import { adminAction, adminCommand, type CliIo } from '../context.ts';
import { isoFromSeconds } from '../output.ts';
import { registerWorkloadJwt } from './workload-jwt.ts';

export function registerJwt(program: Command, io: CliIo): void {
  const jwt = program.command('jwt').description('JWT-SVIDs');
  const cmd = adminCommand(jwt, 'mint', 'mint a JWT-SVID for any SPIFFE ID (admin socket)', io)
    .requiredOption('--spiffe-id <id>', 'SPIFFE ID (the sub claim)')
    .requiredOption('--audience <aud...>', 'audience (aud claim), repeatable')
    .option('--ttl <dur>', 'token lifetime, e.g. 5m (default: server default_jwt_svid_ttl)');
  adminAction<{ spiffeId: string; audience: string[]; ttl?: string }>(
    cmd,
    io,
    async ({ opts, client, out }) => {
      const res = await client(SvidService).mintJWTSVID({
        spiffeId: opts.spiffeId,
        audience: opts.audience,
        ttl: opts.ttl === undefined ? 0 : ttlSeconds(opts.ttl, '--ttl'),
      });
      const expiresAt = isoFromSeconds(res.expiresAt);
      if (out.json) {
        out.printJson({
          token: res.token,
          spiffeId: opts.spiffeId,
          audience: opts.audience,
          expiresAt,
        });
        return;
      }
      out.line(res.token);
      out.note(`expires at: ${expiresAt ?? 'never'}`);
    },
  );
  registerWorkloadJwt(jwt, io);
}
