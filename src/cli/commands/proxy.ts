// `tessera proxy ca show`: the agent's proxy CA certificate (PEM), which clients of the explicit
// HTTP proxy install in their trust store so that CONNECT to a tls_decrypt server workload can be
// terminated by the agent (docs/injection.md, "Explicit HTTP proxy"). Read from the agent's data
// directory — only the certificate; the key next to it stays there.
import type { Command } from 'commander';
import { FailedPreconditionError } from '../../core/errors.ts';
import { readProxyCaCert } from '../../agent/proxy/http/proxy-ca.ts';
import type { CliIo } from '../context.ts';
import { agentDataDirDefault } from '../paths.ts';

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
      const pem = await readProxyCaCert(dir);
      if (pem === null) {
        throw new FailedPreconditionError(
          `no proxy CA in ${dir} yet: the agent creates it when its explicit proxy starts (proxy.http_listen)`,
        );
      }
      io.stdout.write(pem);
    });
}
