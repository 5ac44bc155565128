// The gRPC fast path for FetchJWTSVID (fast-unary.ts), spoken to by hand over HTTP/2: the same
// answers and errors as the Connect route, and everything it does not serve left to Connect.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { fromBinary, toBinary, create } from '@bufbuild/protobuf';
import {
  JWTSVIDRequestSchema,
  JWTSVIDResponseSchema,
} from '../../../proto/gen/spiffe/workload_pb.js';
import { encodeGrpcMessage, parseGrpcTimeout, unframe } from './fast-grpc.ts';
import { TD, makePki, startOnTempSocket, type Pki, type Running } from './testing/fixtures.ts';

interface Reply {
  httpStatus: number;
  contentType: string;
  grpcStatus: string;
  grpcMessage: string;
  /**
   * connect-node answers content-type application/grpc+proto whatever the request said; the
   * fast path repeats the request's (both valid gRPC), which tells here who answered.
   */
  viaConnect: boolean;
  body: Buffer;
}

function frame(msg: Uint8Array, compressed = false): Buffer {
  const b = Buffer.alloc(5 + msg.byteLength);
  b[0] = compressed ? 1 : 0;
  b.writeUInt32BE(msg.byteLength, 1);
  b.set(msg, 5);
  return b;
}

const request = (audience: string[]) =>
  toBinary(JWTSVIDRequestSchema, create(JWTSVIDRequestSchema, { audience }));

function call(
  socketPath: string,
  body: Buffer,
  extra: Record<string, string> = {},
  path = '/SpiffeWorkloadAPI/FetchJWTSVID',
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const session = http2.connect('http://localhost', {
      createConnection: () => net.connect(socketPath),
    });
    session.on('error', reject);
    const req = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      'workload.spiffe.io': 'true',
      ...extra,
    });
    const r: Reply = {
      httpStatus: 0,
      contentType: '',
      grpcStatus: '',
      grpcMessage: '',
      viaConnect: false,
      body: Buffer.alloc(0),
    };
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h['grpc-status'] !== undefined) r.grpcStatus = String(h['grpc-status']);
      if (h['grpc-message'] !== undefined) r.grpcMessage = String(h['grpc-message']);
    };
    req.on('response', (h) => {
      r.httpStatus = Number(h[':status']);
      r.contentType = String(h['content-type']);
      r.viaConnect = h['content-type'] === 'application/grpc+proto';
      take(h);
    });
    req.on('trailers', take);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.body = Buffer.concat(chunks);
      session.close();
      resolve(r);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('FetchJWTSVID gRPC fast path', () => {
  let pki: Pki;
  let run: Running;
  before(async () => {
    pki = await makePki(async (p) => [
      { selector: 'unix:uid:0', svid: await p.svid(`${TD}/a`, 'e1') },
    ]);
    run = await startOnTempSocket(pki.source, { fastPaths: true }); // this path itself, always
  });
  after(() => run.stop());

  it('answers a plain gRPC call with one framed JWTSVIDResponse and grpc-status 0', async () => {
    const r = await call(run.socketPath, frame(request(['svc'])));
    assert.equal(r.httpStatus, 200);
    assert.equal(r.contentType, 'application/grpc');
    assert.equal(r.grpcStatus, '0');
    assert.equal(r.viaConnect, false, 'served by the fast path');
    const res = fromBinary(JWTSVIDResponseSchema, unframe(r.body));
    assert.deepEqual(
      res.svids.map((s) => s.spiffeId),
      [`${TD}/a`],
    );
    const payload = JSON.parse(
      Buffer.from(res.svids[0]!.svid.split('.')[1]!, 'base64url').toString(),
    );
    assert.deepEqual(payload.aud, ['svc']);
  });

  it("gives the Connect route's errors: header, arguments, framing, parse", async () => {
    const noHeader = await call(run.socketPath, frame(request(['svc'])), {
      'workload.spiffe.io': 'false',
    });
    assert.equal(noHeader.grpcStatus, '3');
    assert.equal(noHeader.grpcMessage, 'security header missing from request');
    const empty = await call(run.socketPath, frame(request([])));
    assert.equal(empty.grpcStatus, '3');
    assert.equal(empty.grpcMessage, 'audience must be specified');
    const none = await call(run.socketPath, Buffer.alloc(0));
    assert.equal(none.grpcStatus, '12');
    const two = await call(
      run.socketPath,
      Buffer.concat([frame(request(['a'])), frame(request(['b']))]),
    );
    assert.equal(two.grpcStatus, '12');
    const garbage = await call(run.socketPath, frame(Buffer.from([0xff, 0xff, 0xff])));
    assert.equal(garbage.grpcStatus, '13');
    assert.match(decodeURIComponent(garbage.grpcMessage), /^parse binary/);
    const tooBig = await call(run.socketPath, frame(request(['a'.repeat(100 * 1024)])));
    assert.equal(tooBig.grpcStatus, '8');
  });

  it('ends with DEADLINE_EXCEEDED when grpc-timeout passes first', async () => {
    pki.source.attestHook = () => new Promise(() => {});
    try {
      const started = Date.now();
      const r = await call(run.socketPath, frame(request(['svc'])), { 'grpc-timeout': '100m' });
      assert.equal(r.grpcStatus, '4');
      assert.ok(Date.now() - started < 3000);
    } finally {
      pki.source.attestHook = undefined;
    }
  });

  it('a client that resets the stream mid-call costs nothing; the next call is served', async () => {
    let release!: () => void;
    const attested = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inAttest = new Promise<void>((r) => (entered = r));
    pki.source.attestHook = async () => {
      entered();
      await attested;
    };
    try {
      const session = http2.connect('http://localhost', {
        createConnection: () => net.connect(run.socketPath),
      });
      session.on('error', () => {});
      const req = session.request({
        ':method': 'POST',
        ':path': '/SpiffeWorkloadAPI/FetchJWTSVID',
        'content-type': 'application/grpc',
        'workload.spiffe.io': 'true',
      });
      req.on('error', () => {});
      req.end(frame(request(['svc'])));
      await inAttest;
      req.close(http2.constants.NGHTTP2_CANCEL);
      await new Promise((r) => req.once('close', r));
      release();
      await new Promise((r) => setTimeout(r, 50));
      session.close();
    } finally {
      pki.source.attestHook = undefined;
    }
    const r = await call(run.socketPath, frame(request(['svc'])));
    assert.equal(r.grpcStatus, '0');
  });

  it('leaves compressed messages, malformed timeouts and other methods to Connect', async () => {
    const gz = await call(run.socketPath, frame(gzipSync(request(['svc'])), true), {
      'grpc-encoding': 'gzip',
    });
    assert.equal(gz.grpcStatus, '0', gz.grpcMessage);
    assert.equal(gz.viaConnect, true);
    const badTimeout = await call(run.socketPath, frame(request(['svc'])), {
      'grpc-timeout': 'soon',
    });
    assert.notEqual(badTimeout.grpcStatus, '');
    const validate = await call(
      run.socketPath,
      frame(Buffer.from([0x0a, 0x01, 0x61, 0x12, 0x01, 0x62])),
      {},
      '/SpiffeWorkloadAPI/ValidateJWTSVID',
    );
    assert.equal(validate.grpcStatus, '3', 'Connect route: an invalid token is InvalidArgument');
  });

  it('parses grpc-timeout, percent-encodes grpc-message, and unframes strictly', () => {
    assert.equal(parseGrpcTimeout('100m'), 100);
    assert.equal(parseGrpcTimeout('2S'), 2000);
    assert.equal(parseGrpcTimeout('1H'), 3_600_000);
    assert.equal(parseGrpcTimeout('5000u'), 5);
    assert.equal(parseGrpcTimeout('123456789m'), null, 'at most 8 digits');
    assert.equal(parseGrpcTimeout('10'), null);
    assert.equal(encodeGrpcMessage('plain text: ok'), 'plain text: ok');
    assert.equal(encodeGrpcMessage('100% ünïcode\n'), '100%25 %C3%BCn%C3%AFcode%0A');
    assert.throws(() => unframe(Buffer.from([0, 0, 0, 0, 9, 1])), /promised more bytes/);
    assert.throws(() => unframe(Buffer.from([1, 0, 0, 0, 0])), /compressed/);
    assert.deepEqual([...unframe(Buffer.from([0, 0, 0, 0, 1, 7]))], [7]);
  });
});
