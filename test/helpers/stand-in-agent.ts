// A stand-in agent for black-box tests of the server (the real agent is a later issue): it
// attests over the anonymous TLS listener, then calls the agent API with its SVID over mTLS.
import { type KeyObject, generateKeyPairSync } from 'node:crypto';
import { createClient, type Client } from '@connectrpc/connect';
import { derToPem } from '../../src/crypto/x509/pem.ts';
import { createCsr } from '../../src/crypto/x509/csr-create.ts';
import { mtlsTransport, adminSocketTransport } from '../../src/client/server-transport.ts';
import { AgentService, type AttestAgentRequest } from '../../proto/gen/tessera/v1/agent_pb.js';
import { BundleService } from '../../proto/gen/tessera/v1/bundle_pb.js';
import { SvidService } from '../../proto/gen/tessera/v1/svid_pb.js';
import { SyncService } from '../../proto/gen/tessera/v1/sync_pb.js';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { AttestAgentRequestSchema } from '../../proto/gen/tessera/v1/agent_pb.js';

export function newKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}

export function keyPem(k: KeyObject): string {
  return k.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** The server's trust bundle as PEM, read over the admin socket. */
export async function bundlePem(adminSocket: string): Promise<string> {
  const res = await createClient(BundleService, adminSocketTransport(adminSocket)).getBundle({});
  return (res.bundle?.x509Authorities ?? []).map((d) => derToPem(d)).join('');
}

export interface Attested {
  spiffeId: string;
  key: KeyObject;
  certPem: string;
  serial: string;
}

export class StandInAgent {
  readonly address: string;
  readonly trustDomain: string;
  trustBundlePem: string;
  identity: Attested | null = null;

  constructor(o: { address: string; trustDomain: string; trustBundlePem: string }) {
    this.address = o.address;
    this.trustDomain = o.trustDomain;
    this.trustBundlePem = o.trustBundlePem;
  }

  get serverId(): string {
    return `spiffe://${this.trustDomain}/spire/server`;
  }

  anonymous(): Client<typeof AgentService> {
    return createClient(
      AgentService,
      mtlsTransport({
        address: this.address,
        trustBundlePem: this.trustBundlePem,
        serverId: this.serverId,
      }),
    );
  }

  #transport() {
    if (!this.identity) throw new Error('not attested');
    return mtlsTransport({
      address: this.address,
      trustBundlePem: this.trustBundlePem,
      serverId: this.serverId,
      clientCertPem: this.identity.certPem,
      clientKeyPem: keyPem(this.identity.key),
    });
  }

  agentApi() {
    return createClient(AgentService, this.#transport());
  }
  svidApi() {
    return createClient(SvidService, this.#transport());
  }
  syncApi() {
    return createClient(SyncService, this.#transport());
  }

  /**
   * Runs AttestAgent. `answer` responds to each server challenge (x509pop); join tokens get none.
   */
  async attest(
    type: string,
    payload: Uint8Array,
    answer: (challenge: Uint8Array) => Uint8Array = () => {
      throw new Error('unexpected challenge');
    },
    csrOverride?: Uint8Array,
  ): Promise<Attested> {
    const key = newKey();
    const csr = csrOverride ?? createCsr(key);
    const outbox: MessageInitShape<typeof AttestAgentRequestSchema>[] = [
      { step: { case: 'params', value: { type, payload, csr } } },
    ];
    let wake: (() => void) | null = null;
    let finished = false;
    async function* requests(): AsyncIterable<AttestAgentRequest> {
      for (;;) {
        const next = outbox.shift();
        if (next) {
          yield create(AttestAgentRequestSchema, next);
          continue;
        }
        if (finished) return;
        await new Promise<void>((r) => (wake = r));
      }
    }
    try {
      for await (const res of this.anonymous().attestAgent(requests())) {
        if (res.step.case === 'challenge') {
          outbox.push({ step: { case: 'challengeResponse', value: answer(res.step.value) } });
          (wake as (() => void) | null)?.();
          continue;
        }
        if (res.step.case === 'result') {
          const r = res.step.value;
          const certPem = r.svidChain.map((d) => derToPem(d)).join('');
          const { X509Certificate } = await import('node:crypto');
          const serial = new X509Certificate(
            Buffer.from(r.svidChain[0] ?? new Uint8Array()),
          ).serialNumber.toLowerCase();
          this.identity = { spiffeId: r.spiffeId, key, certPem, serial };
          return this.identity;
        }
      }
      throw new Error('attestation stream ended without a result');
    } finally {
      finished = true;
      (wake as (() => void) | null)?.();
    }
  }

  /** Renews the agent SVID and starts using the new one. */
  async renew(): Promise<Attested> {
    if (!this.identity) throw new Error('not attested');
    const key = newKey();
    const res = await this.agentApi().renewAgent({ csr: createCsr(key) });
    const certPem = res.svidChain.map((d) => derToPem(d)).join('');
    const { X509Certificate } = await import('node:crypto');
    const serial = new X509Certificate(
      Buffer.from(res.svidChain[0] ?? new Uint8Array()),
    ).serialNumber.toLowerCase();
    this.identity = { ...this.identity, key, certPem, serial };
    return this.identity;
  }
}
