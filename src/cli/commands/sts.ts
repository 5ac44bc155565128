// `tessera sts exchange`: an RFC 8693 token exchange against a Tessera (or any) token endpoint —
// the client side of docs/token-exchange.md. Plain HTTP(S) with node's fetch, no admin socket.
// Table output puts the issued token alone on stdout (to capture it); json prints the response.
// The subject token is read from a file and never printed, not even in errors.
import { readInputText } from '../bounded-read.ts';
import { type Command, Option } from 'commander';
import { type ErrorCode, TesseraError } from '../../core/errors.ts';
import { collect, type CliIo } from '../context.ts';
import { outputFormats, Printer, type OutputFormat } from '../output.ts';

const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const TOKEN_TYPES = {
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
  id_token: 'urn:ietf:params:oauth:token-type:id_token',
  access_token: 'urn:ietf:params:oauth:token-type:access_token',
} as const;
const TIMEOUT_MS = 30_000;
/** Bounds on what is read: the subject token file and the endpoint's response body. */
const MAX_SUBJECT_TOKEN = 64 * 1024;
const MAX_RESPONSE = 1024 * 1024;

/** RFC 6749 §5.2 / RFC 8693 §2.2.2 errors → Tessera error codes (and so exit codes). */
const oauthErrors: Readonly<Record<string, ErrorCode>> = {
  invalid_request: 'invalid_argument',
  unsupported_grant_type: 'invalid_argument',
  invalid_grant: 'permission_denied',
  invalid_target: 'permission_denied',
  invalid_scope: 'permission_denied',
  invalid_client: 'unauthenticated',
  unauthorized_client: 'permission_denied',
};

interface ExchangeOptions {
  tokenEndpoint: string;
  subjectToken: string;
  audience?: string[];
  scope?: string[];
  subjectTokenType: 'jwt' | 'id_token';
  requestedTokenType?: 'jwt' | 'access_token';
  output: OutputFormat;
}

export function registerSts(program: Command, io: CliIo): void {
  const sts = program.command('sts').description('RFC 8693 token exchange (client)');
  const cmd = sts
    .command('exchange')
    .description('exchange an external token (e.g. a CI OIDC token) at a token endpoint')
    .requiredOption('--token-endpoint <url>', 'token endpoint, e.g. https://oidc.example.org/token')
    .requiredOption('--subject-token <file>', 'file holding the subject token (never printed)')
    .option('--audience <aud>', 'audience of the issued token, repeatable', collect)
    .option('--scope <scope...>', 'scopes (access tokens only), repeatable')
    .addOption(
      new Option('--subject-token-type <type>', 'type of the subject token')
        .choices(['jwt', 'id_token'])
        .default('jwt'),
    )
    .addOption(
      new Option(
        '--requested-token-type <type>',
        'jwt (a JWT-SVID, the server default) or access_token (RFC 9068)',
      ).choices(['jwt', 'access_token']),
    )
    .addOption(
      new Option('--output <format>', 'output format').choices(outputFormats).default('table'),
    );
  cmd.action(async () => {
    const opts = cmd.opts<ExchangeOptions>();
    const out = new Printer(io.stdout, io.stderr, opts.output);
    const res = await exchange(opts);
    if (out.json) {
      out.printJson(res);
      return;
    }
    out.line(String(res.access_token));
    out.note(`issued token type: ${String(res.issued_token_type ?? '-')}`);
    out.note(`expires in: ${res.expires_in === undefined ? '-' : `${String(res.expires_in)}s`}`);
  });
}

function endpointUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TesseraError('invalid_argument', `--token-endpoint: not a URL: ${raw}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TesseraError('invalid_argument', '--token-endpoint: must be an http(s) URL');
  }
  return url;
}

async function readSubjectToken(file: string): Promise<string> {
  return (await readInputText(file, '--subject-token', MAX_SUBJECT_TOKEN)).trim();
}

async function exchange(opts: ExchangeOptions): Promise<Record<string, unknown>> {
  const url = endpointUrl(opts.tokenEndpoint);
  const form = new URLSearchParams({
    grant_type: GRANT,
    subject_token: await readSubjectToken(opts.subjectToken),
    subject_token_type: TOKEN_TYPES[opts.subjectTokenType],
  });
  if (opts.requestedTokenType !== undefined) {
    form.set('requested_token_type', TOKEN_TYPES[opts.requestedTokenType]);
  }
  for (const aud of opts.audience ?? []) form.append('audience', aud);
  const scopes = (opts.scope ?? []).flatMap((s) => s.split(' ')).filter((s) => s !== '');
  if (scopes.length > 0) form.set('scope', scopes.join(' '));

  const where = url.origin + url.pathname;
  let res: Response;
  let body: string;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
      redirect: 'error', // never resend the subject token somewhere else
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    body = await readBounded(res);
  } catch (e) {
    if (e instanceof TesseraError) throw e;
    const reason =
      e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')
        ? `no response within ${TIMEOUT_MS / 1000}s`
        : describeFetchError(e);
    throw new TesseraError('unavailable', `token endpoint ${where} unreachable: ${reason}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  const obj =
    typeof json === 'object' && json !== null && !Array.isArray(json)
      ? (json as Record<string, unknown>)
      : undefined;
  if (res.ok) {
    if (obj === undefined || typeof obj.access_token !== 'string') {
      throw new TesseraError('internal', `token endpoint ${where}: response has no access_token`);
    }
    return obj;
  }
  if (obj !== undefined && typeof obj.error === 'string') {
    const description =
      typeof obj.error_description === 'string' ? `: ${obj.error_description}` : '';
    throw new TesseraError(
      oauthErrors[obj.error] ?? (res.status >= 500 ? 'unavailable' : 'internal'),
      `token endpoint refused the exchange: ${obj.error}${description}`,
    );
  }
  throw new TesseraError(
    res.status >= 500 || res.status === 429 ? 'unavailable' : 'internal',
    `token endpoint ${where}: HTTP ${res.status}`,
  );
}

/** The response body as text, refusing more than MAX_RESPONSE bytes. */
async function readBounded(res: Response): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > MAX_RESPONSE) {
    await res.body?.cancel();
    throw new TesseraError('internal', `token endpoint response larger than ${MAX_RESPONSE} bytes`);
  }
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.byteLength;
    if (size > MAX_RESPONSE) {
      // Leaving the loop early cancels the stream.
      throw new TesseraError(
        'internal',
        `token endpoint response larger than ${MAX_RESPONSE} bytes`,
      );
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function describeFetchError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = e.cause;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code ?? cause.message;
  }
  return e.message;
}
