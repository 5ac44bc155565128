// Agent half of k8s_psat: read the projected service-account token (Kubernetes rotates it, so
// it is read again on every attestation) and send it with the cluster name.
import { open } from 'node:fs/promises';
import { InvalidArgumentError } from '../../../core/errors.ts';
import type { AgentNodeAttestor } from '../node-attestor.ts';
import { CLUSTER_NAME_RE, MAX_PSAT_TOKEN_BYTES, encodePsatPayload } from './payload.ts';
import { K8S_PSAT_TYPE } from './server.ts';

export const DEFAULT_PSAT_TOKEN_PATH = '/var/run/secrets/tokens/tessera-agent';

/** Reads at most MAX_PSAT_TOKEN_BYTES + 1 bytes: a larger file is refused, never loaded whole. */
export async function readPsatToken(file: string): Promise<string> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    throw new InvalidArgumentError(
      `k8s_psat: cannot read the token file ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  try {
    const buf = Buffer.alloc(MAX_PSAT_TOKEN_BYTES + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > MAX_PSAT_TOKEN_BYTES)
        throw new InvalidArgumentError(
          `k8s_psat: token file ${file} is larger than ${MAX_PSAT_TOKEN_BYTES} bytes`,
        );
    }
    const token = buf.subarray(0, n).toString('utf8').trim();
    if (token === '') throw new InvalidArgumentError(`k8s_psat: token file ${file} is empty`);
    return token;
  } finally {
    await fh.close();
  }
}

export function k8sPsatAgent(cluster: string, tokenPath: string): AgentNodeAttestor {
  if (!CLUSTER_NAME_RE.test(cluster))
    throw new InvalidArgumentError('k8s_psat: cluster must be 1..63 characters of [A-Za-z0-9._-]');
  return {
    type: K8S_PSAT_TYPE,
    // The server trusts a node uid once (TOFU) and refuses it while the node is recorded; once an
    // operator evicts the node, attesting again is what brings the agent back.
    canReattest: true,
    payload: async () => encodePsatPayload({ cluster, token: await readPsatToken(tokenPath) }),
    answer() {
      throw new InvalidArgumentError('k8s_psat attestation takes no challenge');
    },
  };
}
