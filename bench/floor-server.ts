// The floor for the agent's hot path (bench/agent.bench.ts): a bare node:http2 server on a Unix
// socket that answers every gRPC call with a constant — what any server of the Workload API must
// spend per request at least, with nothing of Tessera in it. Unary methods get one constant
// message and grpc-status 0; streaming methods get one constant message and stay open until the
// client cancels, as a Workload API stream does. Run as its own process, so its CPU time
// (from /proc/<pid>/stat) is comparable with the agent's.
// Usage: node bench/floor-server.ts <socket path>   (prints "ready" when listening)
import http2 from 'node:http2';
import { rmSync } from 'node:fs';

const socketPath = process.argv[2];
if (!socketPath) throw new Error('usage: floor-server.ts <socket path>');

// A JWTSVIDResponse of the agent's size (one JWTSVID: SPIFFE ID and a ~300-byte token), which
// also parses as an X509BundlesResponse (field 1 is bytes there), framed: flag 0 + length.
const field = (n: number, bytes: Buffer) =>
  Buffer.concat([Buffer.from([(n << 3) | 2]), varint(bytes.length), bytes]);
const svid = Buffer.concat([
  field(1, Buffer.from('spiffe://example.org/bench/me')),
  field(2, Buffer.alloc(300, 0x61)),
]);
const message = field(1, svid);
const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), message]);
frame.writeUInt32BE(message.length, 1);

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

const server = http2.createServer();
server.on('stream', (stream, headers) => {
  stream.on('error', () => {});
  const unary =
    headers[':path'] === '/SpiffeWorkloadAPI/FetchJWTSVID' ||
    headers[':path'] === '/tessera.access.v1.Credentials/GetCredential';
  // Read the request like a real server does (a unary request's end, a stream's first message).
  stream.on('data', () => {});
  stream.once('end', () => {
    if (stream.destroyed || stream.closed) return;
    stream.respond(
      { ':status': 200, 'content-type': 'application/grpc' },
      { waitForTrailers: unary },
    );
    if (unary) {
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(frame);
    } else {
      stream.write(frame);
    }
  });
});
rmSync(socketPath, { force: true });
server.listen(socketPath, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
