// `tessera server-workload ...`: the things clients reach (an API, a database), over the admin
// socket: create, list, show, update, delete. See docs/access.md.
import { type Command, Option } from 'commander';
import { ServerWorkloadService } from '../../client/api/access.ts';
import { isCloudProtocol } from '../../core/access.ts';
import { InvalidArgumentError, TesseraError } from '../../core/errors.ts';
import { positiveInt } from '../args.ts';
import { readInputText } from '../bounded-read.ts';
import { adminAction, adminCommand, type CliIo } from '../context.ts';
import {
  nameFrom,
  printOne,
  serverWorkloadHeaders,
  serverWorkloadJson,
  serverWorkloadRow,
  serverWorkloadText,
  withNameArg,
} from './access-views.ts';

const PROTOCOLS = ['http', 'https', 'postgres', 'redis', 'mysql', 'tcp', 'aws', 'gcp', 'azure'];

interface Flags {
  name: string;
  host?: string;
  port?: string;
  protocol?: string;
  pathPrefix?: string;
  present?: string;
  tls?: boolean;
  tlsCa?: string | false;
  tlsDecrypt?: boolean;
}

/** What the server takes for tls_ca (server/access/tls-fields.ts MAX_TLS_CA_BYTES). */
const MAX_TLS_CA_BYTES = 64 * 1024;

/** The PEM text of `--tls-ca FILE`; "" for `--no-tls-ca`; undefined when not given. */
async function tlsCaFrom(o: Flags): Promise<string | undefined> {
  if (o.tlsCa === undefined) return undefined;
  if (o.tlsCa === false) return '';
  return readInputText(o.tlsCa, '--tls-ca', MAX_TLS_CA_BYTES);
}

function withFields(cmd: Command, required: boolean): Command {
  const protocol = new Option(
    '--protocol <protocol>',
    'protocol; aws, gcp and azure are cloud targets (docs/cloud-credentials.md)',
  ).choices(PROTOCOLS);
  cmd.requiredOption('--name <name>', 'server workload name');
  if (required) {
    // Host and port are required except for cloud targets: checked in the action.
    cmd
      .option('--host <host>', 'hostname or IP address (optional for aws, gcp, azure)')
      .option('--port <port>', 'port (1-65535; optional for aws, gcp, azure)')
      .addOption(protocol.makeOptionMandatory());
  } else {
    cmd
      .option('--host <host>', 'hostname or IP address')
      .option('--port <port>', 'port (1-65535)')
      .addOption(protocol);
  }
  cmd
    .option('--tls', 'the server workload speaks TLS (implied by https); the proxy verifies it')
    .option(
      '--tls-ca <file>',
      'PEM CA certificates to verify its TLS certificate (default: system roots)',
    )
    .option(
      '--tls-decrypt',
      'http(s): the explicit proxy terminates CONNECT to it with a proxy-CA certificate',
    );
  if (!required) {
    cmd
      .option('--no-tls', 'the server workload does not speak TLS')
      .option('--no-tls-ca', 'verify against the system roots again')
      .option('--no-tls-decrypt', 'tunnel CONNECT to it without decrypting');
  }
  return cmd
    .option('--path-prefix <path>', 'http(s): only requests under this path ("" = any)')
    .option(
      '--present <how>',
      'how the credential is presented: authorization-bearer | header:NAME | basic | query:NAME | ' +
        'postgres-password | redis-auth | mysql-password | aws-sigv4 ("" = not injected)',
    );
}

const viewOf = (ctx: { out: { json: boolean } }) =>
  ctx.out.json ? serverWorkloadJson : serverWorkloadText;

export function registerServerWorkload(program: Command, io: CliIo): void {
  const sw = program
    .command('server-workload')
    .description('server workloads: the APIs and databases clients are granted access to');

  const create = withFields(adminCommand(sw, 'create', 'create a server workload', io), true);
  adminAction<Flags>(create, io, async (ctx) => {
    const o = ctx.opts;
    const cloud = isCloudProtocol(o.protocol ?? '');
    for (const [flag, v] of [
      ['--host', o.host],
      ['--port', o.port],
    ] as const) {
      if (v === undefined && !cloud)
        throw new InvalidArgumentError(
          `${flag} is required (optional only for --protocol aws, gcp and azure)`,
        );
    }
    const res = await ctx.client(ServerWorkloadService).createServerWorkload({
      serverWorkload: {
        name: o.name,
        host: o.host ?? '',
        port: o.port === undefined ? 0 : positiveInt(o.port, '--port', 65535),
        protocol: o.protocol ?? '',
        pathPrefix: o.pathPrefix ?? '',
        present: o.present ?? '',
        tls: o.tls ?? false,
        tlsCa: (await tlsCaFrom(o)) ?? '',
        tlsDecrypt: o.tlsDecrypt ?? false,
      },
    });
    printOne(ctx, res.serverWorkload, 'server workload', viewOf(ctx));
  });

  const update = withFields(
    adminCommand(sw, 'update', 'change a server workload (flags not given keep their value)', io),
    false,
  );
  adminAction<Flags>(update, io, async (ctx) => {
    const o = ctx.opts;
    const c = ctx.client(ServerWorkloadService);
    const { serverWorkload: cur } = await c.getServerWorkload({ name: o.name });
    if (!cur) throw new TesseraError('internal', 'the server returned no server workload');
    const protocol = o.protocol ?? cur.protocol;
    const http = protocol === 'http' || protocol === 'https';
    const res = await c.updateServerWorkload({
      serverWorkload: {
        name: cur.name,
        host: o.host ?? cur.host,
        port: o.port === undefined ? cur.port : positiveInt(o.port, '--port', 65535),
        protocol,
        // A path prefix only means something for http(s): switching away drops it.
        pathPrefix: o.pathPrefix ?? (http ? cur.pathPrefix : ''),
        present: o.present ?? cur.present,
        tls: o.tls ?? cur.tls,
        tlsCa: (await tlsCaFrom(o)) ?? cur.tlsCa,
        tlsDecrypt: o.tlsDecrypt ?? cur.tlsDecrypt,
      },
    });
    printOne(ctx, res.serverWorkload, 'server workload', viewOf(ctx));
  });

  const list = adminCommand(sw, 'list', 'list server workloads', io);
  adminAction<object>(list, io, async ({ client, out }) => {
    const res = await client(ServerWorkloadService).listServerWorkloads({});
    if (out.json) out.printJson({ serverWorkloads: res.serverWorkloads.map(serverWorkloadJson) });
    else out.table(serverWorkloadHeaders, res.serverWorkloads.map(serverWorkloadRow));
  });

  const show = withNameArg(
    adminCommand(sw, 'show', 'show a server workload', io),
    'server workload',
  );
  adminAction<{ name?: string }>(show, io, async (ctx) => {
    const name = nameFrom(show, ctx.opts, 'server-workload show NAME');
    const res = await ctx.client(ServerWorkloadService).getServerWorkload({ name });
    printOne(ctx, res.serverWorkload, 'server workload', viewOf(ctx));
  });

  const del = withNameArg(
    adminCommand(sw, 'delete', 'delete a server workload (refused while policies use it)', io),
    'server workload',
  );
  adminAction<{ name?: string }>(del, io, async (ctx) => {
    const name = nameFrom(del, ctx.opts, 'server-workload delete NAME');
    const res = await ctx.client(ServerWorkloadService).deleteServerWorkload({ name });
    if (ctx.out.json)
      ctx.out.printJson(res.serverWorkload ? serverWorkloadJson(res.serverWorkload) : {});
    else ctx.out.line(`server workload ${name} deleted`);
  });
}
