// tpm: both halves and their config. Server: `node_attestors.tpm.ek_ca_bundle_file`, the PEM
// file of the TPM manufacturers' CA certificates EK certificates must chain to (intermediates in
// the same file are used as such). Agent: `tpm.tcti`, `tpm.ek_cert_nv_index`, `tpm.tools_dir`.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { InvalidArgumentError } from '../../../core/errors.ts';
import type { NodeAttestorPlugin } from '../node-attestor.ts';
import { tpmAgent } from './agent.ts';
import { TPM_TYPE, createTpmAttestor } from './server.ts';

const serverSchema = z.strictObject({
  /** PEM file of the manufacturer CAs (and their intermediates). */
  ek_ca_bundle_file: z.string().min(1),
});
const agentSchema = z.strictObject({
  /** TCTI of the TPM, as tpm2-tools take it (TPM2TOOLS_TCTI). */
  tcti: z.string().min(1).max(512).default('device:/dev/tpmrm0'),
  ek_cert_nv_index: z
    .string()
    .regex(/^0x[0-9a-fA-F]{1,8}$/, 'expected a hex NV index such as 0x01c00002')
    .default('0x01c00002'),
  tools_dir: z.string().default(''),
  timeout: z.number().int().min(1000).max(120_000).default(30_000),
});

function readCas(file: string): X509Certificate[] {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InvalidArgumentError(
      `config: node_attestors.tpm.ek_ca_bundle_file: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].map(
    (m) => new X509Certificate(m[0]),
  );
}

export const tpmPlugin: NodeAttestorPlugin<typeof serverSchema, typeof agentSchema> = {
  type: TPM_TYPE,
  serverSchema,
  createServer(config, deps) {
    const cas = readCas(config.ek_ca_bundle_file);
    // Self-signed certificates are roots; the others may only link an EK certificate to one.
    const isRoot = (c: X509Certificate) => c.checkIssued(c) && c.verify(c.publicKey);
    return createTpmAttestor({
      roots: cas.filter(isRoot).length > 0 ? cas.filter(isRoot) : cas,
      intermediates: cas.filter((c) => !isRoot(c)),
      now: deps.now,
    });
  },
  agentSchema,
  createAgent: async (config) =>
    tpmAgent({
      tcti: config.tcti,
      ekCertNvIndex: config.ek_cert_nv_index,
      toolsDir: config.tools_dir,
      timeoutMs: config.timeout,
    }),
};
