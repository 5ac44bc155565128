// The credential API on the Workload API socket, over real attestation of this process, through
// both paths (plain gRPC fast path and Connect), with an independent grpc-js client built from
// the .proto and with the SDK's WorkloadClient (which reads the denial detail).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { UnavailableError } from '../../core/errors.ts';
import { CredentialDenied, WorkloadClient } from '../../client/workload/index.ts';
import { loadService, type GrpcClient } from '../workload-api/testing/fixtures.ts';
import {
  released,
  startSocket,
  testEntry,
  UID,
  world,
  type Socket,
  type World,
} from './testing/fixtures.ts';

const WEB = 'spiffe://example.org/web';
const ADMIN = 'spiffe://example.org/admin';

function grpcClient(socketPath: string): GrpcClient {
  const Ctor = loadService(
    'proto/tessera/access/v1/credentials.proto',
    'tessera.access.v1.Credentials',
  );
  return new Ctor(`unix://${socketPath}`, grpc.credentials.createInsecure()) as GrpcClient;
}

function get(c: GrpcClient, req: object, header = true): Promise<Record<string, unknown>> {
  const md = new grpc.Metadata();
  if (header) md.set('workload.spiffe.io', 'true');
  return new Promise((resolve, reject) =>
    (
      c['GetCredential'] as (
        r: object,
        m: grpc.Metadata,
        cb: (e: Error | null, v: Record<string, unknown>) => void,
      ) => void
    ).call(c, req, md, (e, v) => (e ? reject(e) : resolve(v))),
  );
}

/**
 * The call fails with `code` and `details`. connect-node percent-encodes all of grpc-message
 * (encodeURIComponent), which grpc-js only partly decodes: compared decoded.
 */
async function rejectsWith(
  p: Promise<unknown>,
  code: grpc.status,
  details: string | RegExp,
): Promise<void> {
  const e = (await p.then(
    () => assert.fail('expected a failure'),
    (x: unknown) => x,
  )) as grpc.ServiceError;
  assert.equal(e.code, code, e.message);
  const text = decodeURIComponent(e.details);
  if (typeof details === 'string') assert.equal(text, details);
  else assert.match(text, details);
}

for (const fastPath of [true, false]) {
  describe(`credential API on the socket (${fastPath ? 'gRPC fast path' : 'Connect'})`, () => {
    let w: World;
    let s: Socket;
    let c: GrpcClient;
    let sdk: WorkloadClient;
    before(async () => {
      w = world([
        testEntry('e-web', WEB, [`unix:uid:${UID}`]),
        testEntry('e-admin', ADMIN, [`unix:uid:${UID}`]),
        testEntry('e-other', 'spiffe://example.org/other', ['unix:uid:424242']),
      ]);
      s = await startSocket(w, fastPath);
      c = grpcClient(s.socketPath);
      sdk = new WorkloadClient({ address: `unix://${s.socketPath}` });
    });
    after(async () => {
      c.close();
      sdk.close();
      await s.stop();
    });

    it('releases through the server once, then answers from the cache', async () => {
      w.cache.clear();
      w.server.asks.length = 0;
      w.server.answer = async (p) => released(p, 'secret-token', Date.now() + 3_600_000);
      const a = await get(c, { server_workload: 'db' });
      assert.equal(a['token'], 'secret-token');
      assert.equal(a['spiffe_id'], WEB);
      assert.equal(a['server_workload'], 'db');
      assert.equal(a['present'], 'authorization-bearer');
      assert.ok(Number(a['expires_at']) > Date.now());
      const b = await sdk.getCredential({ serverWorkload: 'db' });
      assert.deepEqual(b.value, { kind: 'token', token: 'secret-token' });
      assert.equal(w.server.asks.length, 1);
      const ask = w.server.asks[0]!;
      assert.equal(ask.entryId, 'e-web'); // the caller's first entry
      assert.deepEqual(ask.selectors, [`unix:uid:${UID}`]);
      assert.equal(ask.attributes['unix.uid'], String(UID));
      assert.equal(ask.server, 'db');
      assert.match(ask.correlationId, /^[0-9a-f-]{36}$/);
    });

    it('asks as the requested SPIFFE ID when the caller has it, and refuses one it has not', async () => {
      w.server.asks.length = 0;
      await get(c, { server_workload: 'api', spiffe_id: ADMIN });
      assert.equal(w.server.asks[0]?.entryId, 'e-admin');
      await rejectsWith(
        get(c, { server_workload: 'api', spiffe_id: 'spiffe://example.org/other' }),
        grpc.status.PERMISSION_DENIED,
        'no identity issued for spiffe://example.org/other to this caller',
      );
    });

    it('requires the security header', async () => {
      await rejectsWith(
        get(c, { server_workload: 'db' }, false),
        grpc.status.INVALID_ARGUMENT,
        'security header missing from request',
      );
    });

    it('refuses a bad server workload name before asking anyone', async () => {
      w.server.asks.length = 0;
      await rejectsWith(
        get(c, { server_workload: '' }),
        grpc.status.INVALID_ARGUMENT,
        'server_workload must be specified',
      );
      await rejectsWith(
        get(c, { server_workload: 'Bad Name/../x' }),
        grpc.status.INVALID_ARGUMENT,
        /invalid server_workload "Bad Name\/..\/x"/,
      );
      await rejectsWith(
        get(c, { server_workload: 'db', spiffe_id: 'not-an-id' }),
        grpc.status.INVALID_ARGUMENT,
        /^invalid spiffe_id: /,
      );
      assert.equal(w.server.asks.length, 0);
    });

    it('reports a denial with its reason, policy and failed condition, and never caches it', async () => {
      w.server.asks.length = 0;
      w.server.answer = async () => ({
        kind: 'denied',
        denial: {
          reason: 'condition-false',
          policy: 'web-db',
          failedCondition: 'now.hour < 18',
          correlationId: 'corr-1',
        },
      });
      const msg =
        'access to server workload "db-denied" denied for spiffe://example.org/web: condition-false (policy "web-db", failed condition: now.hour < 18)';
      await rejectsWith(
        get(c, { server_workload: 'db-denied' }),
        grpc.status.PERMISSION_DENIED,
        msg,
      );
      const e = await sdk.getCredential({ serverWorkload: 'db-denied' }).then(
        () => assert.fail('released'),
        (x: unknown) => x,
      );
      assert.ok(e instanceof CredentialDenied, String(e));
      assert.equal(e.message, msg);
      assert.equal(e.reason, 'condition-false');
      assert.equal(e.policy, 'web-db');
      assert.equal(e.failedCondition, 'now.hour < 18');
      assert.equal(e.correlationId, 'corr-1');
      assert.equal(w.server.asks.length, 2);
    });

    it('is Unavailable naming the cause when the server is away and nothing is cached', async () => {
      w.server.answer = async () => {
        throw new UnavailableError(
          'the Tessera server (127.0.0.1:1) does not answer: connect ECONNREFUSED',
        );
      };
      await rejectsWith(
        get(c, { server_workload: 'away' }),
        grpc.status.UNAVAILABLE,
        /does not answer/,
      );
    });

    it('refuses a caller without an entry', async () => {
      const saved = [...w.entries];
      w.entries.length = 0;
      try {
        // A fresh connection: the attestation reuse of the old one would still match (1 s).
        const other = grpcClient(s.socketPath);
        try {
          await rejectsWith(
            get(other, { server_workload: 'db' }),
            grpc.status.PERMISSION_DENIED,
            'no identity issued',
          );
        } finally {
          other.close();
        }
      } finally {
        w.entries.push(...saved);
      }
    });
  });
}
