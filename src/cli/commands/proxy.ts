// `tessera proxy ca show`: the agent's proxy CA certificate (PEM), which clients of the explicit
// HTTP proxy install in their trust store so that CONNECT to a tls_decrypt server workload can be
// terminated by the agent (docs/injection.md, "Explicit HTTP proxy"). Read from the agent's data
// directory — only the certificate; the key next to it stays there.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { FailedPreconditionError } from '../../core/errors.ts';
import type { CliIo } from '../context.ts';
import { agentDataDirDefault } from '../paths.ts';

/** The agent writes it (agent/proxy/http/proxy-ca.ts PROXY_CA_CERT_FILE; proxy.test.ts checks). */
export const PROXY_CA_CERT_FILE = 'proxy-ca.pem';

export function registerProxy(program: Command, io: CliIo): void {
  const proxy = program.command('proxy').description("the agent's credential-injection proxy");
  const ca = proxy.command('ca').description("the agent's proxy CA");
  ca.command('show')
    .description("print the proxy CA certificate (PEM) to install in clients' trust stores")
    .option(
      '--data-dir <dir>',
      `the agent's state directory (env TESSERA_AGENT_DATA_DIR; default ${agentDataDirDefault(io.env)})`,
    )
    .action(async (opts: { dataDir?: string }) => {
      const dir = opts.dataDir ?? agentDataDirDefault(io.env);
      const pem = await readFile(path.join(dir, PROXY_CA_CERT_FILE), 'utf8').catch(
        (e: NodeJS.ErrnoException) => {
          if (e.code === 'ENOENT') return null;
          throw new FailedPreconditionError(`cannot read the proxy CA in ${dir}: ${e.message}`);
        },
      );
      if (pem === null) {
        throw new FailedPreconditionError(
          `no proxy CA in ${dir} yet: the agent creates it when its explicit proxy starts (proxy.http_listen)`,
        );
      }
      io.stdout.write(pem);
    });
}
