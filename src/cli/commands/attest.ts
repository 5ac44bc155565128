// `tessera attest`: this process's signed identity document from the agent
// (tessera.identity.v1.IdentityDocumentService on the Workload API socket; docs/identity-
// document.md). `--output jwt` (default) prints the compact JWS for a third party to verify with
// the JWKS; `--output json` prints it with its decoded header and claims (decoded, not verified:
// the verifier is whoever the document is for).
import { type Command, Option } from 'commander';
import { ENDPOINT_ENV, WorkloadClient } from '../../client/workload/index.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { optionAlias, type CliIo } from '../context.ts';
import {
  WORKLOAD_CALL_TIMEOUT_MS,
  defaultWorkloadSocket,
  explainWorkloadError,
  workloadAddress,
} from './workload-common.ts';

interface AttestFlags {
  audience: string[];
  spiffeId?: string;
  socket: string;
  output: 'jwt' | 'json';
}

export function registerAttest(program: Command, io: CliIo): void {
  const cmd = program
    .command('attest')
    .description("this process's signed identity document from the agent")
    .requiredOption('--audience <aud...>', 'audience (aud claim), repeatable; required')
    .option('--spiffe-id <id>', 'as this SPIFFE ID (default: the default identity)')
    .option(
      '--socket <path>',
      `the agent's Workload API socket: a path, unix:///path or tcp://IP:port (env ${ENDPOINT_ENV})`,
      defaultWorkloadSocket(io.env),
    )
    .addOption(
      new Option('--output <format>', 'jwt: the token; json: it with its decoded claims')
        .choices(['jwt', 'json'])
        .default('jwt'),
    );
  optionAlias(cmd, '--workload-socket <path>', 'socket');
  cmd.action(async () => {
    const opts = cmd.opts<AttestFlags>();
    const client = new WorkloadClient({ address: workloadAddress(opts.socket) });
    try {
      const doc = await client.fetchIdentityDocument(
        { audience: opts.audience, ...(opts.spiffeId ? { spiffeId: opts.spiffeId } : {}) },
        { timeoutMs: WORKLOAD_CALL_TIMEOUT_MS },
      );
      if (opts.output === 'jwt') {
        io.stdout.write(`${doc.document}\n`);
        return;
      }
      const [header, claims] = decode(doc.document);
      const json = {
        spiffeId: doc.spiffeId,
        expiresAt: new Date(doc.expiresAt).toISOString(),
        header,
        claims,
        document: doc.document,
      };
      io.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    } catch (e) {
      throw explainWorkloadError(e, client.endpoint);
    } finally {
      client.close();
    }
  });
}

/** The JWS header and payload as JSON (what the agent returned; not verified here). */
function decode(jws: string): [unknown, unknown] {
  const [h, p] = jws.split('.');
  try {
    return [
      JSON.parse(Buffer.from(h ?? '', 'base64url').toString('utf8')),
      JSON.parse(Buffer.from(p ?? '', 'base64url').toString('utf8')),
    ];
  } catch {
    throw new InvalidArgumentError('the agent returned a document that is not a JWS');
  }
}
