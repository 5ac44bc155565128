// A raw client for the proxy's bad-input tests: sends bytes as given and collects what comes
// back until the proxy closes (bounded by the test's own timeout).
import net from 'node:net';
import { errorFields } from '../wire.ts';

/** Sends `packets` one after another and resolves with every byte received until close. */
export function exchange(port: number, ...packets: Buffer[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => {
      for (const p of packets) s.write(p);
    });
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

/** Reads the ErrorResponse at `offset` of a reply: its SQLSTATE and message. */
export function errorAt(reply: Buffer, offset = 0): { code: string; message: string } {
  if (String.fromCharCode(reply[offset] ?? 0) !== 'E') {
    throw new Error(
      `no ErrorResponse at ${offset}: ${reply.subarray(offset, offset + 16).toString('hex')}`,
    );
  }
  const length = reply.readInt32BE(offset + 1);
  const f = errorFields(reply.subarray(offset + 5, offset + 1 + length));
  return { code: f.get('C') ?? '', message: f.get('M') ?? '' };
}

/** An untyped startup-phase packet: int32 length, int32 code, body. */
export function packet(code: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(8);
  head.writeInt32BE(body.length + 8, 0);
  head.writeInt32BE(code, 4);
  return Buffer.concat([head, body]);
}
