// The Redis protocol handler of the credential-injection proxy (docs/injection.md, "Redis").
//
// Per client connection: obtain the credential (the decision happens there), connect to the
// server workload (TLS with full verification when it has `tls`), authenticate with
// `AUTH [user] password` and only then relay. The client authenticates with nothing it knows: its
// AUTH commands are replaced by AUTH with the injected identity, and HELLO's AUTH clause by the
// injected one (its protocol version kept), so the reply (+OK, or HELLO's map) comes back in its
// place among pipelined replies and the injected identity stays. RESET would log the connection
// out to Redis's `default` user (nopass and every permission in a stock redis.conf), so it is never
// forwarded: the commands before it are answered, then the connection closes. Everything else the
// client sends passes through unchanged (command-scanner.ts frames it); the server's replies are
// relayed raw.
//
// A denial is answered as Redis answers a missing permission: `-NOPERM` naming the failed
// condition, to the client's first command, then the connection is closed.
import { isTesseraError, PermissionDeniedError } from '../../../core/errors.ts';
import type { ProxyConnection, ProxyProtocolHandler } from '../proxy-connection.ts';
import { noDelay, readUntil, ReadError, startTls, type Stream } from '../handshake-io.ts';
import { forward } from '../relay.ts';
import { CommandScanner } from './command-scanner.ts';
import {
  authCommand,
  commandName,
  errorReply,
  MAX_REPLY_LINE_BYTES,
  redisIdentity,
  rewriteCommand,
  splitReplyLine,
  type RedisIdentity,
} from './resp.ts';

export interface RedisHandlerOptions {
  /** Bound on each step before relaying (upstream connect, TLS, AUTH reply; a denied client's first command). Default 10 s. */
  readonly timeoutMs?: number;
}

/** Refused before relaying: the reply the client gets (never naming the credential). */
class Refusal extends Error {
  readonly reply: Buffer;
  constructor(reply: Buffer, message: string) {
    super(message);
    this.reply = reply;
  }
}

export function createRedisHandler(options: RedisHandlerOptions = {}): ProxyProtocolHandler {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return {
    protocols: ['redis'],
    async handle(client, conn) {
      const c = client as Stream;
      c.on('error', () => c.destroy());
      let upstream: Stream;
      let id: RedisIdentity;
      try {
        id = await identity(conn);
        upstream = await authenticated(conn, id, timeoutMs);
      } catch (e) {
        await refuse(c, conn, e, timeoutMs);
        return;
      }
      await relay(c, upstream, id, conn);
    },
  };
}

async function identity(conn: ProxyConnection): Promise<RedisIdentity> {
  const released = await conn.credential();
  const id = redisIdentity(released.credential.value);
  if (id === undefined) {
    throw new Refusal(
      errorReply(
        'ERR',
        `tessera proxy: server workload "${conn.server.name}" released a ${released.credential.value.kind} credential; Redis needs a password or token`,
      ),
      'credential kind unusable for redis',
    );
  }
  return id;
}

/** The upstream connection, authenticated as `id` (TLS first when the server workload has tls). */
async function authenticated(
  conn: ProxyConnection,
  id: RedisIdentity,
  timeoutMs: number,
): Promise<Stream> {
  const name = conn.server.name;
  let socket: Stream;
  try {
    const raw = await conn.connectUpstream();
    socket = conn.server.tls ? await startTls(raw, conn.upstreamTlsOptions(), timeoutMs) : raw;
  } catch (e) {
    const why = isTesseraError(e) ? e.message : 'connection failed';
    throw new Refusal(
      errorReply('ERR', `tessera proxy: server workload "${name}" unreachable: ${why}`),
      why,
    );
  }
  socket.on('error', () => socket.destroy());
  socket.write(authCommand(id));
  let reply: { value: string; rest: Buffer };
  try {
    reply = await readUntil(socket, Buffer.alloc(0), parseLine, {
      maxBytes: MAX_REPLY_LINE_BYTES,
      timeoutMs,
      signal: conn.signal,
      what: 'reply to AUTH',
    });
  } catch (e) {
    socket.destroy();
    const why = e instanceof ReadError ? e.message : 'read failed';
    throw new Refusal(errorReply('ERR', `tessera proxy: server workload "${name}": ${why}`), why);
  }
  if (reply.value !== '+OK' || reply.rest.length > 0) {
    socket.destroy();
    // The server's words are not echoed: they may name the injected user.
    throw new Refusal(
      errorReply('ERR', `tessera proxy: server workload "${name}" refused the injected credential`),
      `AUTH refused: ${reply.value.split(' ', 1)[0] ?? ''}`,
    );
  }
  return socket;
}

function parseLine(buf: Buffer): { value: string; rest: Buffer } | undefined {
  const got = splitReplyLine(buf);
  return got && { value: got.line, rest: got.rest };
}

/**
 * Answers the client's first command with the refusal (so that a client waiting for a reply reads
 * it as one) and closes.
 */
async function refuse(
  client: Stream,
  conn: ProxyConnection,
  e: unknown,
  timeoutMs: number,
): Promise<void> {
  let reply: Buffer;
  if (e instanceof Refusal) {
    reply = e.reply;
    conn.log.warn({ server: conn.server.name, reason: e.message }, 'redis connection refused');
  } else if (e instanceof PermissionDeniedError) {
    reply = errorReply('NOPERM', e.message);
    conn.log.info({ server: conn.server.name }, 'redis connection denied');
  } else {
    const message = isTesseraError(e) && e.code === 'unavailable' ? e.message : 'internal error';
    reply = errorReply(
      'ERR',
      `tessera proxy: no credential for server workload "${conn.server.name}": ${message}`,
    );
    conn.log.warn({ server: conn.server.name, err: String(e) }, 'redis credential failed');
  }
  try {
    await readUntil(
      client,
      Buffer.alloc(0),
      (b) => (b.length > 0 ? { value: b, rest: b } : undefined),
      {
        maxBytes: 1,
        timeoutMs,
        signal: conn.signal,
        what: 'first command',
      },
    );
  } catch {
    client.destroy();
    return;
  }
  await new Promise<void>((resolve) => {
    client.once('close', resolve);
    client.end(reply, () => client.destroy());
  });
}

/** Client → server through the scanner (AUTH/HELLO replaced); server → client raw. */
function relay(
  client: Stream,
  upstream: Stream,
  id: RedisIdentity,
  conn: ProxyConnection,
): Promise<void> {
  const scanner = new CommandScanner();
  noDelay(client, upstream);
  // The server's replies need nothing from the agent: once AUTH is answered the server has
  // nothing in flight (the client's commands are not forwarded yet), so that direction is spliced.
  const spliced = conn.splice?.([[upstream, client]]);
  // Resolves once the server has ended and all its replies reached the client.
  const upstreamFlushed = forward(upstream, client, spliced);
  return new Promise((resolve) => {
    let open = 2;
    const closed = (): void => {
      spliced?.release();
      client.destroy();
      upstream.destroy();
      open -= 1;
      if (open === 0) resolve();
    };
    // After a clean end, the replies before it first; after a reset, at once.
    const upstreamClosed = (): void =>
      void (upstream.readableEnded ? upstreamFlushed : Promise.resolve()).then(closed);
    client.once('close', closed);
    upstream.once('close', upstreamClosed);
    let broken = false;
    client.on('data', (chunk: Buffer) => {
      if (broken) return;
      let ok = true;
      for (const ev of scanner.push(chunk)) {
        if (ev.kind === 'pass') ok = upstream.write(ev.bytes);
        else if (ev.kind === 'command' && commandName(ev.args) === 'reset') {
          // Nothing from RESET on is forwarded; the server answers what came before, then ends,
          // and the client's connection ends after those replies.
          broken = true;
          conn.log.info(
            { server: conn.server.name },
            'redis RESET refused: it would drop the injected identity; closing after the replies before it',
          );
          client.pause();
          upstream.end();
          return;
        } else if (ev.kind === 'command') ok = upstream.write(rewriteCommand(ev.args, id));
        else {
          // Garbage from the client: the server's pending replies are dropped with the
          // connection, so the error cannot land inside one of them.
          broken = true;
          conn.log.info(
            { server: conn.server.name, error: ev.message },
            'redis protocol error from client',
          );
          client.off('close', closed);
          upstream.off('close', upstreamClosed);
          upstream.unpipe(client);
          spliced?.release();
          upstream.destroy();
          client.end(errorReply('ERR', `Protocol error: ${ev.message}`), () => {
            client.destroy();
            resolve();
          });
          return;
        }
      }
      if (!ok) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    });
    client.once('end', () => upstream.end());
    void upstreamFlushed.then(() => client.end());
  });
}
