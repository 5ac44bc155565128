// `tessera healthcheck`: for container HEALTHCHECKs and scripts. Exit 0 and "ok" only when the
// server answers on the admin socket and reports itself ready.
import type { Command } from 'commander';
import { ServerService } from '../../client/api/server.ts';
import { adminAction, adminCommand, type CliIo } from '../context.ts';
import { CliExit } from '../exit-codes.ts';
import { isoFromSeconds } from '../output.ts';

export function registerHealthcheck(program: Command, io: CliIo): void {
  const cmd = adminCommand(program, 'healthcheck', 'check that the server is up and ready', io);
  adminAction(cmd, io, async ({ client, out }) => {
    const s = await client(ServerService).getStatus({});
    if (out.json) {
      out.printJson({
        ready: s.ready,
        trustDomain: s.trustDomain,
        serverId: s.serverId,
        version: s.version,
        datastore: s.datastore,
        entries: Number(s.entries),
        agents: Number(s.agents),
        startedAt: isoFromSeconds(s.startedAt),
      });
    } else if (s.ready) {
      out.line('ok');
    }
    if (!s.ready) throw new CliExit('unavailable', 'server is not ready');
  });
}
