// Test support (imported only by *.test.ts): the credential doors over real attestation (this
// process's kernel facts, `unix:uid:<uid>` selectors), real entries matched by selectors, the
// real cache and service, and a scriptable server side (the Releaser port) that records what it
// was asked.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ManualClock } from '../../../core/clock.ts';
import type { Entry } from '../../../core/entry.ts';
import { entryOf } from '../../../core/testing/entry.ts';
import { formatSelector, type Selector } from '../../../core/selector.ts';
import {
  AttestationService,
  type AttestationServiceOptions,
} from '../../attestation/attestation-service.ts';
import type { CallerProcess } from '../../attestation/caller.ts';
import { CredentialCache, type ReleaseOutcome } from '../../cache/credential-cache.ts';
import { makePki } from '../../workload-api/testing/fixtures.ts';
import { startWorkloadApi, type WorkloadApi } from '../../workload-api/server.ts';
import { silentLogger } from '../../workload-api/log.ts';
import { CredentialService } from '../credential-service.ts';
import type { ReleaseParams } from '../release-client.ts';
import { credentialSocketService } from '../socket-service.ts';

export const UID = process.getuid?.() ?? 0;
export const T0 = Date.now();

export function testEntry(id: string, spiffeId: string, selectors: string[], revision = 1): Entry {
  return entryOf({
    id,
    spiffeId,
    parentId: 'spiffe://example.org/spire/agent/test',
    selectors: selectors.map((s) => {
      const i = s.indexOf(':');
      return { type: s.slice(0, i), value: s.slice(i + 1) };
    }),
    revision,
  });
}

/** The server side, scripted: `answer` decides; every ask is recorded. */
export class FakeServer {
  readonly asks: ReleaseParams[] = [];
  answer: (p: ReleaseParams) => Promise<ReleaseOutcome> = async (p) => released(p, 'tok-1');
  release = (p: ReleaseParams): Promise<ReleaseOutcome> => {
    this.asks.push(p);
    return this.answer(p);
  };
}

export function released(
  p: ReleaseParams,
  token: string,
  expiresAt: number | null = null,
): ReleaseOutcome {
  return {
    kind: 'released',
    released: {
      credential: { value: { kind: 'token', token }, expiresAt, leaseId: '' },
      spiffeId: 'spiffe://example.org/web',
      server: p.server,
      present: 'authorization-bearer',
      policy: 'web-db',
      credentialProvider: 'static',
      correlationId: p.correlationId,
    },
  };
}

export interface World {
  readonly entries: Entry[];
  readonly server: FakeServer;
  readonly cache: CredentialCache;
  readonly clock: ManualClock;
  readonly attestation: AttestationService;
  readonly credentials: CredentialService;
}

/** Entries matched by selector subset; this process attests as `unix:uid:<uid>`. */
export function world(entries: Entry[], o: Partial<AttestationServiceOptions> = {}): World {
  const clock = new ManualClock(T0);
  const server = new FakeServer();
  const cache = new CredentialCache({ clock, maxSize: 100 });
  const attestation = new AttestationService({
    selectors: {
      attest: async (c: CallerProcess): Promise<Selector[]> => [
        { type: 'unix', value: `uid:${c.uid}` },
      ],
    },
    entries: {
      match: (sel) => {
        const have = new Set(sel.map(formatSelector));
        return entries.filter((e) => e.selectors.every((s) => have.has(formatSelector(s))));
      },
    },
    ...o,
  });
  const credentials = new CredentialService({ cache, release: server.release });
  return { entries, server, cache, clock, attestation, credentials };
}

export interface Socket {
  readonly socketPath: string;
  readonly api: WorkloadApi;
  stop(): Promise<void>;
}

/** The Workload API socket server with the credential service on it. */
export async function startSocket(w: World, fastPath: boolean): Promise<Socket> {
  const pki = await makePki(async () => []);
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-cred-'));
  chmodSync(dir, 0o755);
  const socketPath = path.join(dir, 'agent.sock');
  const api = await startWorkloadApi({
    socketPath,
    source: pki.source,
    attestation: w.attestation,
    fastPaths: fastPath,
    services: [
      credentialSocketService({
        attestation: w.attestation,
        credentials: w.credentials,
        log: silentLogger,
        fastPath,
      }),
    ],
  });
  return {
    socketPath,
    api,
    async stop() {
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
