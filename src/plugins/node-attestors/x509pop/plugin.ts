// x509pop: both halves and their config. Server: `node_attestors.x509pop.ca_bundle_file`, the
// PEM file of the CAs agent certificates must chain to. Agent: `x509pop.cert_file`/`key_file`.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { NodeAttestorPlugin } from '../node-attestor.ts';
import { x509PopAgent } from './agent.ts';
import { createX509PopAttestor, X509POP_TYPE } from './server.ts';

const serverSchema = z.strictObject({
  /** PEM file of the CA certificates agent certificates must chain to. */
  ca_bundle_file: z.string().min(1),
});
const agentSchema = z.strictObject({ cert_file: z.string().min(1), key_file: z.string().min(1) });

export const x509popPlugin: NodeAttestorPlugin<typeof serverSchema, typeof agentSchema> = {
  type: X509POP_TYPE,
  serverSchema,
  createServer(config, deps) {
    // Read once at startup, by the plugin that owns the setting.
    const pem = readFileSync(config.ca_bundle_file, 'utf8');
    const roots = [
      ...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g),
    ].map((m) => new X509Certificate(m[0]));
    return createX509PopAttestor({ roots, now: deps.now });
  },
  agentSchema,
  createAgent: (config) => x509PopAgent(config.cert_file, config.key_file),
};
