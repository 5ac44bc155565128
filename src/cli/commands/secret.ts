// `tessera secret ...`: the encrypted secret store (docs/access.md, "Secret store") over the admin
// socket. Values are write-only: they are read from a file or standard input (bounded to 64 KiB)
// and sent to the server; nothing here ever prints one.
import type { Command } from 'commander';
import { readBounded, TooLargeError } from '../bounded-read.ts';
import { InvalidArgumentError, TesseraError } from '../../core/errors.ts';
import { type Secret, SecretService } from '../../client/api/secret.ts';
import { adminAction, adminCommand, type AdminContext, type CliIo } from '../context.ts';
import { isoFromMillis } from '../output.ts';

/** The server's limit (server/broker/secret-store.ts MAX_SECRET_BYTES). */
export const MAX_SECRET_BYTES = 64 * 1024;

interface ValueFlags {
  fromFile?: string;
  fromStdin?: boolean;
}

/** The value from --from-file or --from-stdin (exactly one; `optional`: neither is fine too). */
export async function readSecretValue(
  o: ValueFlags,
  optional: boolean,
): Promise<Uint8Array | undefined> {
  if (o.fromFile !== undefined && o.fromStdin) {
    throw new InvalidArgumentError('give the value with --from-file or --from-stdin, not both');
  }
  if (o.fromFile === undefined && !o.fromStdin) {
    if (optional) return undefined;
    throw new InvalidArgumentError('give the value with --from-file FILE or --from-stdin');
  }
  const flag = o.fromStdin ? '--from-stdin' : '--from-file';
  const source = o.fromStdin ? 'standard input' : (o.fromFile ?? '');
  let bytes: Buffer;
  try {
    bytes = await readBounded(o.fromStdin ? '-' : source, MAX_SECRET_BYTES);
  } catch (e) {
    if (e instanceof TooLargeError) {
      throw new InvalidArgumentError(
        `${flag}: ${source} is larger than 64 KiB (${MAX_SECRET_BYTES} bytes), the limit of a secret; nothing was stored`,
      );
    }
    const code = (e as NodeJS.ErrnoException).code;
    throw new TesseraError(
      code === 'ENOENT' ? 'not_found' : 'invalid_argument',
      `${flag}: cannot read ${source}: ${code ?? 'error'}`,
    );
  }
  if (bytes.length === 0) throw new InvalidArgumentError(`${flag}: ${source} is empty`);
  return new Uint8Array(bytes);
}

export function secretJson(s: Secret): Record<string, unknown> {
  return {
    name: s.name,
    currentVersion: s.currentVersion,
    createdAt: isoFromMillis(s.createdAt),
    updatedAt: isoFromMillis(s.updatedAt),
    versions: s.versions.map((v) => ({
      version: v.version,
      createdAt: isoFromMillis(v.createdAt),
      kekId: v.kekId,
      size: v.size,
    })),
  };
}

function required(s: Secret | undefined): Secret {
  if (!s) throw new TesseraError('internal', 'the server returned no secret');
  return s;
}

function printChange(ctx: AdminContext<object>, s: Secret, what: string): void {
  if (ctx.out.json) ctx.out.printJson(secretJson(s));
  else {
    const size = s.versions.at(-1)?.size;
    ctx.out.line(
      `secret ${s.name} ${what}: version ${s.currentVersion}` +
        (size === undefined ? '' : ` (${size} bytes)`),
    );
  }
}

function withValueFlags(cmd: Command, what: string): Command {
  return cmd
    .option('--from-file <file>', `read the ${what} from a file (at most 64 KiB)`)
    .option('--from-stdin', `read the ${what} from standard input (at most 64 KiB)`);
}

export function registerSecret(program: Command, io: CliIo): void {
  const secret = program
    .command('secret')
    .description('the encrypted secret store (values are write-only)');

  const put = withValueFlags(
    adminCommand(secret, 'put', 'store a secret, or a new version of it', io),
    'value',
  ).argument('<name>', 'secret name');
  adminAction<ValueFlags>(put, io, async (ctx) => {
    const name = put.args[0] ?? '';
    const value = await readSecretValue(ctx.opts, false);
    const res = await ctx
      .client(SecretService)
      .putSecret({ name, value: value ?? new Uint8Array() });
    printChange(ctx, required(res.secret), 'stored');
  });

  const rotate = withValueFlags(
    adminCommand(
      secret,
      'rotate',
      'a new version: the given value, or (none given) the current value under a new data key',
      io,
    ),
    'new value',
  ).argument('<name>', 'secret name');
  adminAction<ValueFlags>(rotate, io, async (ctx) => {
    const name = rotate.args[0] ?? '';
    const value = await readSecretValue(ctx.opts, true);
    const res = await ctx.client(SecretService).rotateSecret({ name, ...(value ? { value } : {}) });
    printChange(ctx, required(res.secret), 'rotated');
  });

  const list = adminCommand(secret, 'list', 'list secrets (names and versions, never values)', io);
  adminAction<object>(list, io, async ({ client, out }) => {
    const res = await client(SecretService).listSecrets({});
    if (out.json) out.printJson({ secrets: res.secrets.map(secretJson) });
    else
      out.table(
        ['NAME', 'VERSION', 'UPDATED'],
        res.secrets.map((s) => [s.name, String(s.currentVersion), isoFromMillis(s.updatedAt)]),
      );
  });

  const show = adminCommand(
    secret,
    'show',
    'show a secret: metadata and versions (never the value)',
    io,
  ).argument('<name>', 'secret name');
  adminAction<object>(show, io, async (ctx) => {
    const res = await ctx.client(SecretService).getSecret({ name: show.args[0] ?? '' });
    const s = required(res.secret);
    if (ctx.out.json) {
      ctx.out.printJson(secretJson(s));
      return;
    }
    ctx.out.fields([
      ['Name', s.name],
      ['Current version', String(s.currentVersion)],
      ['Created', isoFromMillis(s.createdAt)],
      ['Updated', isoFromMillis(s.updatedAt)],
    ]);
    ctx.out.line();
    ctx.out.table(
      ['VERSION', 'SIZE', 'KEK', 'CREATED'],
      s.versions.map((v) => [
        String(v.version),
        String(v.size),
        v.kekId,
        isoFromMillis(v.createdAt),
      ]),
    );
  });

  const del = adminCommand(secret, 'delete', 'delete a secret and all its versions', io).argument(
    '<name>',
    'secret name',
  );
  adminAction<object>(del, io, async (ctx) => {
    const res = await ctx.client(SecretService).deleteSecret({ name: del.args[0] ?? '' });
    const s = required(res.secret);
    if (ctx.out.json) ctx.out.printJson(secretJson(s));
    else ctx.out.line(`secret ${s.name} deleted`);
  });

  const kek = adminCommand(
    secret,
    'rotate-kek',
    'a new key-encryption key: every data key is re-wrapped under it, the old one destroyed',
    io,
  );
  adminAction<object>(kek, io, async ({ client, out }) => {
    const res = await client(SecretService).rotateKeyEncryptionKey({});
    if (out.json) out.printJson({ kekId: res.kekId, rewrapped: res.rewrapped });
    else out.line(`key-encryption key ${res.kekId} active; ${res.rewrapped} data keys re-wrapped`);
  });
}
