// Workload API responses are sent uncompressed even to a client that offers gzip (server.ts:
// a zlib stream per message was most of the agent's CPU when a change fans out to many streams).
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { TD, makePki, startOnTempSocket, type Pki, type Running } from './testing/fixtures.ts';

interface FirstMessage {
  readonly encoding: string | undefined;
  /** The gRPC frame's compressed flag and its declared message length. */
  readonly compressedFlag: number;
  readonly length: number;
}

/** Opens FetchX509SVID offering gzip, reads the first frame's header, then cancels. */
function firstMessage(socketPath: string): Promise<FirstMessage> {
  return new Promise((resolve, reject) => {
    const session = http2.connect('http://localhost', {
      createConnection: () => net.connect(socketPath),
    });
    session.on('error', reject);
    const req = session.request({
      ':method': 'POST',
      ':path': '/SpiffeWorkloadAPI/FetchX509SVID',
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-accept-encoding': 'gzip,deflate,identity',
      'workload.spiffe.io': 'true',
    });
    let encoding: string | undefined;
    let buf = Buffer.alloc(0);
    req.on('response', (h) => {
      const e = h['grpc-encoding'];
      encoding = e === undefined ? undefined : String(e);
    });
    req.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length < 5) return;
      resolve({ encoding, compressedFlag: buf[0]!, length: buf.readUInt32BE(1) });
      req.close(http2.constants.NGHTTP2_CANCEL);
      session.close();
    });
    req.on('error', reject);
    req.on('end', () => reject(new Error('stream ended before a message')));
    // An empty X509SVIDRequest, uncompressed.
    req.end(Buffer.from([0, 0, 0, 0, 0]));
  });
}

describe('Workload API response compression', () => {
  let pki: Pki;
  let run: Running;
  before(async () => {
    pki = await makePki(async (p) => [
      { selector: `unix:uid:${process.getuid?.() ?? 0}`, svid: await p.svid(`${TD}/a`, 'e1') },
    ]);
    run = await startOnTempSocket(pki.source);
  });
  after(() => run.stop());

  it('sends X509SVIDResponse uncompressed although the client accepts gzip', async () => {
    const m = await firstMessage(run.socketPath);
    // Large enough that Connect's default (compress above 1 KiB) would have compressed it.
    assert.ok(m.length > 1024, `message of ${m.length} bytes`);
    // Connect still names the negotiated encoding in the headers; the per-message flag is what
    // says whether this message is compressed (gRPC over HTTP/2, Length-Prefixed-Message).
    assert.equal(m.compressedFlag, 0, `compressed, grpc-encoding ${m.encoding}`);
  });
});
