// The gRPC fast path for the server streams (fast-stream.ts), spoken to by hand over HTTP/2: who
// answers, the Connect route's errors and codes, nothing written to an unattested caller, the
// client's deadline. The grpc-js suite (workload-api.test.ts) covers the streams' semantics on
// both paths (TESSERA_TEST_CONNECT_ONLY=1 runs it through Connect).
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fromBinary } from '@bufbuild/protobuf';
import {
  X509BundlesResponseSchema,
  X509SVIDResponseSchema,
} from '../../../proto/gen/spiffe/workload_pb.js';
import { TD, makePki, startOnTempSocket, type Pki, type Running } from './testing/fixtures.ts';

interface Streamed {
  contentType: string;
  grpcStatus: string;
  grpcMessage: string;
  /** Message bodies, unframed. */
  messages: Buffer[];
}

interface Open {
  readonly req: http2.ClientHttp2Stream;
  /** Resolves once `n` messages have arrived. */
  messages(n: number): Promise<Buffer[]>;
  readonly ended: Promise<Streamed>;
  close(): void;
}

function open(
  socketPath: string,
  path: string,
  body: Buffer = Buffer.from([0, 0, 0, 0, 0]),
  extra: Record<string, string> = {},
): Open {
  const session = http2.connect('http://localhost', {
    createConnection: () => net.connect(socketPath),
  });
  session.on('error', () => {});
  const req = session.request({
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
    'workload.spiffe.io': 'true',
    ...extra,
  });
  const r: Streamed = { contentType: '', grpcStatus: '', grpcMessage: '', messages: [] };
  const take = (h: http2.IncomingHttpHeaders) => {
    if (h['grpc-status'] !== undefined) r.grpcStatus = String(h['grpc-status']);
    if (h['grpc-message'] !== undefined) r.grpcMessage = String(h['grpc-message']);
  };
  req.on('response', (h) => {
    r.contentType = String(h['content-type']);
    take(h);
  });
  req.on('trailers', take);
  let pending = Buffer.alloc(0);
  const waiters: (() => void)[] = [];
  req.on('data', (c: Buffer) => {
    pending = Buffer.concat([pending, c]);
    while (pending.byteLength >= 5 && pending.byteLength >= 5 + pending.readUInt32BE(1)) {
      const len = pending.readUInt32BE(1);
      r.messages.push(pending.subarray(5, 5 + len));
      pending = pending.subarray(5 + len);
    }
    waiters.splice(0).forEach((w) => w());
  });
  req.on('error', () => {});
  const ended = new Promise<Streamed>((resolve) =>
    req.on('close', () => {
      session.close();
      waiters.splice(0).forEach((w) => w());
      resolve(r);
    }),
  );
  req.end(body);
  return {
    req,
    ended,
    async messages(n) {
      while (r.messages.length < n) {
        if (req.closed) throw new Error(`stream ended after ${r.messages.length} messages`);
        await new Promise<void>((w) => waiters.push(w));
      }
      return r.messages.slice(0, n);
    },
    close() {
      req.close(http2.constants.NGHTTP2_CANCEL);
      session.close();
    },
  };
}

describe('server-stream gRPC fast path', () => {
  let pki: Pki;
  let run: Running;
  before(async () => {
    pki = await makePki(async (p) => [
      { selector: 'unix:uid:0', svid: await p.svid(`${TD}/a`, 'e1') },
    ]);
    run = await startOnTempSocket(pki.source, { fastPaths: true });
  });
  after(() => run.stop());

  it('serves FetchX509SVID: full state at once, then the change, same bytes on every stream', async () => {
    const a = open(run.socketPath, '/SpiffeWorkloadAPI/FetchX509SVID');
    const b = open(run.socketPath, '/SpiffeWorkloadAPI/FetchX509SVID');
    const [firstA] = await a.messages(1);
    const [firstB] = await b.messages(1);
    const svids = fromBinary(X509SVIDResponseSchema, firstA!).svids;
    assert.deepEqual(
      svids.map((s) => s.spiffeId),
      [`${TD}/a`],
    );
    assert.deepEqual(firstB, firstA);
    const next = await pki.svid(`${TD}/a`, 'e1', 'rotated');
    pki.source.update((s) => ({ ...s, entries: [{ selector: 'unix:uid:0', svid: next }] }));
    const [, secondA] = await a.messages(2);
    assert.equal(fromBinary(X509SVIDResponseSchema, secondA!).svids[0]!.hint, 'rotated');
    a.close();
    b.close();
    const ended = await a.ended;
    assert.equal(ended.contentType, 'application/grpc', 'served by the fast path');
  });

  it('serves FetchX509Bundles with the own trust domain', async () => {
    const s = open(run.socketPath, '/SpiffeWorkloadAPI/FetchX509Bundles');
    const [m] = await s.messages(1);
    assert.ok(TD in fromBinary(X509BundlesResponseSchema, m!).bundles);
    s.close();
  });

  it("gives the Connect route's errors: header, framing, parse", async () => {
    const path = '/SpiffeWorkloadAPI/FetchX509SVID';
    const noHeader = await open(run.socketPath, path, undefined, { 'workload.spiffe.io': 'no' })
      .ended;
    assert.equal(noHeader.grpcStatus, '3');
    assert.equal(noHeader.grpcMessage, 'security header missing from request');
    assert.equal(noHeader.messages.length, 0);
    const none = await open(run.socketPath, path, Buffer.alloc(0)).ended;
    assert.equal(none.grpcStatus, '12');
    assert.equal(
      decodeURIComponent(none.grpcMessage),
      'protocol error: missing input message for server-streaming method',
    );
    const two = await open(run.socketPath, path, Buffer.alloc(10)).ended;
    assert.equal(two.grpcStatus, '12');
    const garbage = await open(run.socketPath, path, Buffer.from([0, 0, 0, 0, 2, 0xff, 0xff]))
      .ended;
    assert.equal(garbage.grpcStatus, '13');
  });

  it('writes nothing to a caller it cannot attest: Unavailable', async () => {
    pki.source.attestHook = () => Promise.reject(new Error('no such process'));
    try {
      const r = await open(run.socketPath, '/SpiffeWorkloadAPI/FetchX509SVID').ended;
      assert.equal(r.grpcStatus, '14');
      assert.equal(r.messages.length, 0);
    } finally {
      pki.source.attestHook = undefined;
    }
  });

  it('ends an open stream with DEADLINE_EXCEEDED in the trailers when grpc-timeout passes', async () => {
    const s = open(run.socketPath, '/SpiffeWorkloadAPI/FetchJWTBundles', undefined, {
      'grpc-timeout': '200m',
    });
    await s.messages(1);
    const r = await s.ended;
    assert.equal(r.grpcStatus, '4');
    assert.equal(r.messages.length, 1);
  });

  it('PermissionDenied when the identity goes away mid-stream', async () => {
    const saved = pki.source.state;
    const s = open(run.socketPath, '/SpiffeWorkloadAPI/FetchX509SVID');
    await s.messages(1);
    pki.source.update((st) => ({ ...st, entries: [] }));
    const r = await s.ended;
    pki.source.update(() => saved);
    assert.equal(r.grpcStatus, '7');
    assert.equal(r.grpcMessage, 'no identity issued');
  });
});
