// The agent's credential stack as its own process, for bench/credentials.bench.ts: the Workload
// API socket server with the credential service on it (fast path and all), the real unix workload
// attestor and entry matcher, the real credential cache and service — everything a workload's
// GetCredential touches in `tessera agent run` — with the server's release stood in by a
// constant credential (a cache hit never reaches the server; the release count is printed at
// exit so the bench can check that every measured call was a hit).
// Usage: node bench/credential-agent.ts <socket path>   (prints "ready" when listening)
import { rmSync } from 'node:fs';
import type { Entry } from '../src/core/entry.ts';
import { entryOf } from '../src/core/testing/entry.ts';
import { systemClock } from '../src/agent/compose.ts';
import { AttestationService } from '../src/agent/attestation/attestation-service.ts';
import { SyncedEntryMatcher } from '../src/agent/attestation/entry-matcher.ts';
import { attestorsSource } from '../src/agent/attestation/workload-attestors.ts';
import { CredentialCache } from '../src/agent/cache/credential-cache.ts';
import { CredentialService } from '../src/agent/credentials/credential-service.ts';
import { credentialSocketService } from '../src/agent/credentials/socket-service.ts';
import { makePki } from '../src/agent/workload-api/testing/fixtures.ts';
import { silentLogger } from '../src/agent/workload-api/log.ts';
import { startWorkloadApi } from '../src/agent/workload-api/server.ts';
import { createWorkloadAttestors } from '../src/plugins/workload-attestors/catalog.ts';

const socketPath = process.argv[2];
if (!socketPath) throw new Error('usage: credential-agent.ts <socket path>');
const uid = process.getuid?.() ?? 0;

const entry: Entry = entryOf({
  id: 'bench-entry',
  spiffeId: 'spiffe://example.org/bench/me',
  parentId: 'spiffe://example.org/spire/agent/join_token/bench',
  selectors: [{ type: 'unix', value: `uid:${uid}` }],
});
const entries = { entries: new Map([[entry.id, entry]]), onChange: () => () => {} };
const attestation = new AttestationService({
  selectors: attestorsSource(
    createWorkloadAttestors({ unix: {} }, { procRoot: '/proc', env: process.env }),
  ),
  entries: new SyncedEntryMatcher(entries, systemClock),
  clock: systemClock,
});
let releases = 0;
const credentials = new CredentialService({
  cache: new CredentialCache({ clock: systemClock, maxSize: 10_000 }),
  release: async (p) => {
    releases++;
    return {
      kind: 'released',
      released: {
        credential: {
          value: { kind: 'token', token: `bench-token-${'x'.repeat(200)}` },
          expiresAt: Date.now() + 3_600_000,
          leaseId: '',
        },
        spiffeId: entry.spiffeId,
        server: p.server,
        present: 'authorization-bearer',
        policy: 'bench',
        credentialProvider: 'static',
        correlationId: p.correlationId,
      },
    };
  },
});
// The Workload API's own source is needed by the socket server; the bench never calls it.
const pki = await makePki(async () => []);
rmSync(socketPath, { force: true });
const api = await startWorkloadApi({
  socketPath,
  source: pki.source,
  attestation,
  services: [credentialSocketService({ attestation, credentials, log: silentLogger })],
});
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void api.close().then(() => {
    process.stdout.write(`releases ${releases}\n`);
    process.exit(0);
  });
});
