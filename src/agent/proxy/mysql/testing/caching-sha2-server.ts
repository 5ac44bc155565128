// Tests only: a MySQL server that authenticates one user with caching_sha2_password as MySQL
// documents it ("Caching SHA-2 Pluggable Authentication"), since the MariaDB here does not
// implement that plugin. It keeps SHA256(SHA256(password)) and verifies a scramble with it (the
// fast path) only for a user in its cache; a user not yet cached gets full authentication — the
// password itself over TLS, or RSA-OAEP-encrypted (password XOR scramble) to the key it sends on
// request — after which the user is cached, as in MySQL. After login it answers COM_PING and
// COM_QUERY with OK and COM_QUIT with a close. Every login is recorded (user, path, database).
import { constants, createHash, generateKeyPairSync, privateDecrypt } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { readUntil, type Stream } from '../../handshake-io.ts';
import {
  buildGreeting,
  CAP,
  errPacket,
  isSslRequest,
  packet,
  parseHandshakeResponse,
  splitPacket,
  type Packet,
} from '../packets.ts';
import { freshScramble } from '../scramble.ts';

export interface Login {
  readonly user: string;
  readonly path: 'fast' | 'full-tls' | 'full-rsa' | 'denied';
  readonly database: string;
}

export interface CachingSha2Server {
  readonly port: number;
  readonly logins: Login[];
  close(): Promise<void>;
}

const sha256 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const xor = (a: Buffer, b: Buffer): Buffer =>
  Buffer.from(a.map((x, i) => x ^ (b[i % b.length] ?? 0)));
const OK = Buffer.from([0, 0, 0, 2, 0, 0, 0]);
const PLUGIN = 'caching_sha2_password';

export async function startCachingSha2Server(o: {
  readonly user: string;
  readonly password: string;
  readonly tls?: { readonly key: string; readonly cert: string };
  /** The plugin the greeting names (default caching_sha2_password); another one gets an auth switch. */
  readonly greetWith?: string;
}): Promise<CachingSha2Server> {
  const stored = sha256(sha256(Buffer.from(o.password)));
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const logins: Login[] = [];
  let cached = false;
  let nextId = 1;
  const sockets = new Set<Socket>();

  async function serve(socket: Socket): Promise<void> {
    const signal = new AbortController().signal;
    let s: Stream = socket;
    let pending: Buffer = Buffer.alloc(0);
    const read = async (): Promise<Packet> => {
      const got = await readUntil(s, pending, (b) => splitPacket(b), {
        maxBytes: Infinity,
        timeoutMs: 10_000,
        signal,
        what: 'client packet',
      });
      pending = got.rest;
      if (got.value === 'too-large') throw new Error('too large');
      return got.value;
    };
    const scramble = freshScramble();
    const caps =
      0x1 |
      CAP.CONNECT_WITH_DB |
      CAP.PROTOCOL_41 |
      0x2000 |
      CAP.SECURE_CONNECTION |
      CAP.PLUGIN_AUTH |
      CAP.CONNECT_ATTRS |
      CAP.PLUGIN_AUTH_LENENC |
      (o.tls ? CAP.SSL : 0);
    s.write(
      packet(
        0,
        buildGreeting({
          serverVersion: Buffer.from('8.0.36-test'),
          connectionId: nextId++,
          scramble,
          capabilities: caps,
          charset: 45,
          status: 2,
          reserved: Buffer.alloc(10),
          plugin: o.greetWith ?? PLUGIN,
        }),
      ),
    );
    let p = await read();
    let secure = false;
    if (isSslRequest(p.payload) && o.tls) {
      // The ClientHello may have come with the SSLRequest: TLS reads through a stream that
      // starts with what was already read.
      const carrier = new Duplex({
        read: () => socket.resume(),
        write: (chunk: Buffer, _enc, cb) => void socket.write(chunk, cb),
        final: (cb) => void socket.end(cb),
      });
      carrier.push(pending);
      pending = Buffer.alloc(0);
      socket.on('data', (c: Buffer) => {
        if (!carrier.push(c)) socket.pause();
      });
      socket.once('end', () => carrier.push(null));
      socket.once('close', () => carrier.destroy());
      const tls = new TLSSocket(carrier, {
        isServer: true,
        key: o.tls.key,
        cert: o.tls.cert,
      });
      await new Promise<void>((resolve, reject) => {
        tls.once('secure', resolve);
        tls.once('error', reject);
      });
      s = tls;
      secure = true;
      p = await read();
    }
    const h = parseHandshakeResponse(p.payload);
    const database = h.database?.toString() ?? '';
    const user = h.username.toString();
    let proof = h.authResponse;
    let seq = p.seq;
    if (h.plugin !== PLUGIN) {
      s.write(
        packet(
          ++seq,
          Buffer.concat([
            Buffer.from([0xfe]),
            Buffer.from(`${PLUGIN}\0`),
            scramble,
            Buffer.alloc(1),
          ]),
        ),
      );
      const sw = await read();
      seq = sw.seq;
      proof = sw.payload;
    }
    const deny = (): void => {
      logins.push({ user, path: 'denied', database });
      s.end(packet(++seq, errPacket(1045, '28000', `Access denied for user '${user}'`)));
    };
    if (user !== o.user) return deny();
    if (cached) {
      // Fast path: SHA256(pw) = proof XOR SHA256(stored + scramble); it must hash to stored.
      const stage1 = proof.length === 32 ? xor(proof, sha256(stored, scramble)) : Buffer.alloc(0);
      if (!sha256(stage1).equals(stored)) return deny();
      s.write(packet(++seq, Buffer.from([0x01, 0x03])));
      logins.push({ user, path: 'fast', database });
    } else {
      s.write(packet(++seq, Buffer.from([0x01, 0x04])));
      let answer = await read();
      let plain: Buffer;
      let path: Login['path'];
      if (secure) {
        plain = answer.payload;
        path = 'full-tls';
      } else {
        if (!(answer.payload.length === 1 && answer.payload[0] === 0x02)) return deny();
        s.write(
          packet(answer.seq + 1, Buffer.concat([Buffer.from([0x01]), Buffer.from(publicPem)])),
        );
        answer = await read();
        plain = xor(
          privateDecrypt(
            { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING },
            answer.payload,
          ),
          scramble,
        );
        path = 'full-rsa';
      }
      seq = answer.seq;
      if (!plain.equals(Buffer.from(`${o.password}\0`))) return deny();
      cached = true;
      logins.push({ user, path, database });
    }
    s.write(packet(++seq, OK));
    for (;;) {
      const cmd = await read();
      if (cmd.payload[0] === 0x01) return void s.end();
      s.write(packet(cmd.seq + 1, OK));
    }
  }

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
    serve(socket).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    logins,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
