// The few RESP values the Redis handler writes itself, and the rewriting of the client's AUTH and
// HELLO into the injected identity (redis.io: AUTH, HELLO). Pure.
import type { CredentialValue } from '../../../core/access.ts';

/** The identity the proxy authenticates with: ACL user ("" = the default user) and password. */
export interface RedisIdentity {
  readonly username: string;
  readonly password: string;
}

/**
 * The Redis identity in a released credential: a password credential is an ACL user and its
 * password; a token is the default user's password (requirepass). Undefined for anything else.
 */
export function redisIdentity(value: CredentialValue): RedisIdentity | undefined {
  if (value.kind === 'password') return { username: value.username, password: value.password };
  if (value.kind === 'token') return { username: '', password: value.token };
  return undefined;
}

/** A command as a RESP array of bulk strings. */
export function encodeCommand(args: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** An error reply `-<CODE> <message>`; CR and LF in the message become spaces (one line). */
export function errorReply(code: string, message: string): Buffer {
  return Buffer.from(`-${code} ${message.replace(/[\r\n]+/g, ' ')}\r\n`);
}

/** `AUTH [username] password` for the identity. */
export function authCommand(id: RedisIdentity): Buffer {
  return encodeCommand(id.username ? ['AUTH', id.username, id.password] : ['AUTH', id.password]);
}

/** A captured command's name, lower case. */
export function commandName(args: readonly Buffer[]): string {
  return (args[0] ?? Buffer.alloc(0)).toString('latin1').toLowerCase();
}

/**
 * What replaces a client's AUTH or HELLO (args[0] is the name as the client sent it):
 *   - AUTH with any arguments → AUTH with the injected identity (the client's arguments are
 *     dropped unread: it knows no password, and the injected identity stays);
 *   - HELLO protover [AUTH u p] [SETNAME n] … → HELLO protover AUTH <injected> plus the client's
 *     other options, so the protocol version the client asked for is kept;
 *   - HELLO alone (no protover) asks nothing of authentication and is sent as is.
 */
export function rewriteCommand(args: readonly Buffer[], id: RedisIdentity): Buffer {
  if (commandName(args) === 'auth') return authCommand(id);
  const protover = args[1];
  if (protover === undefined) return encodeCommand(args);
  const rest: Buffer[] = [];
  for (let i = 2; i < args.length; i += 1) {
    const option = (args[i] ?? Buffer.alloc(0)).toString('latin1').toLowerCase();
    if (option === 'auth') {
      i += 2; // the client's username and password: dropped
      continue;
    }
    rest.push(args[i] as Buffer);
  }
  return encodeCommand(['HELLO', protover, 'AUTH', id.username || 'default', id.password, ...rest]);
}

/** Longest first reply line the handler reads from the server (to its own AUTH). */
export const MAX_REPLY_LINE_BYTES = 4096;

/**
 * The first line of a reply in `buf` (without CRLF) and the bytes after it, or undefined while
 * incomplete.
 */
export function splitReplyLine(buf: Buffer): { line: string; rest: Buffer } | undefined {
  const nl = buf.indexOf('\r\n');
  if (nl < 0) return undefined;
  return { line: buf.subarray(0, nl).toString('utf8'), rest: buf.subarray(nl + 2) };
}
