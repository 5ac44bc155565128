// SCRAM-SHA-256 client (RFC 5802, RFC 7677) as PostgreSQL speaks it: no channel binding
// (gs2 header "n,,"), an empty user name (the server takes the startup packet's), and the
// server's signature verified before the session is trusted — a server that cannot prove it
// knows the password's keys is not the database the credential was released for.
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
/** Bounds the key derivation a server can make us compute (PostgreSQL's default is 4096). */
export const MAX_ITERATIONS = 1_000_000;
const GS2_HEADER = 'n,,';

/** The server broke the SCRAM exchange (or failed to prove itself). */
export class ScramError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScramError';
  }
}

export interface ScramClientStart {
  /** client-first-message, sent in SASLInitialResponse. */
  readonly clientFirst: string;
  readonly clientFirstBare: string;
  readonly nonce: string;
}

/** Step 1: the client-first-message. `nonce` is injected for tests (RFC 7677's vector). */
export function scramStart(
  nonce = randomBytes(18).toString('base64'),
  user = '',
): ScramClientStart {
  const clientFirstBare = `n=${saslName(user)},r=${nonce}`;
  return { clientFirst: GS2_HEADER + clientFirstBare, clientFirstBare, nonce };
}

export interface ScramProof {
  /** client-final-message, sent in SASLResponse. */
  readonly clientFinal: string;
  /** The server signature the server-final-message must carry. */
  readonly serverSignature: Buffer;
}

/** Step 2: answers the server-first-message with the client proof. */
export async function scramProve(
  start: ScramClientStart,
  serverFirst: string,
  password: string,
): Promise<ScramProof> {
  const attrs = parseAttributes(serverFirst);
  const nonce = attrs.get('r');
  const salt = attrs.get('s');
  const iterText = attrs.get('i');
  if (attrs.has('m')) throw new ScramError('server-first-message has a mandatory extension');
  if (nonce === undefined || salt === undefined || iterText === undefined) {
    throw new ScramError('server-first-message lacks r, s or i');
  }
  if (!nonce.startsWith(start.nonce) || nonce.length === start.nonce.length) {
    throw new ScramError("server nonce does not extend the client's");
  }
  if (!/^[1-9][0-9]{0,9}$/.test(iterText) || Number(iterText) > MAX_ITERATIONS) {
    throw new ScramError(`iteration count must be 1..${MAX_ITERATIONS}`);
  }
  const saltBytes = Buffer.from(salt, 'base64');
  if (saltBytes.length === 0) throw new ScramError('empty salt');

  const salted = await saltedPassword(password, saltBytes, Number(iterText));
  const clientKey = hmac(salted, 'Client Key');
  const storedKey = createHash('sha256').update(clientKey).digest();
  const clientFinalBare = `c=${Buffer.from(GS2_HEADER).toString('base64')},r=${nonce}`;
  const authMessage = `${start.clientFirstBare},${serverFirst},${clientFinalBare}`;
  const clientSignature = hmac(storedKey, authMessage);
  const proof = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!;
  const serverSignature = hmac(hmac(salted, 'Server Key'), authMessage);
  return {
    clientFinal: `${clientFinalBare},p=${proof.toString('base64')}`,
    serverSignature,
  };
}

/**
 * SaltedPassword per (password, salt, iteration count) — RFC 5802 §5.1 lets a client keep it
 * instead of the password: a role's salt changes only with its password, so the connections of a
 * pool derive it once (PBKDF2 is most of a login's CPU). Keyed by an HMAC under a key of this
 * process, never by the password; concurrent logins share one derivation; at most
 * SALTED_ENTRIES kept, least recently used dropped first.
 */
function saltedPassword(password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  const key = createHmac('sha256', cacheKey)
    .update(`${iterations}\0${salt.toString('base64')}\0`)
    .update(password, 'utf8')
    .digest('base64');
  let derived = salted.get(key);
  if (derived !== undefined) {
    salted.delete(key); // re-inserted below: most recently used last
  } else {
    derived = pbkdf2Async(Buffer.from(saslPrep(password), 'utf8'), salt, iterations, 32, 'sha256');
    const mine = derived;
    mine.catch(() => salted.get(key) === mine && salted.delete(key));
  }
  salted.set(key, derived);
  if (salted.size > SALTED_ENTRIES) salted.delete(salted.keys().next().value!);
  return derived;
}

const SALTED_ENTRIES = 256;
const salted = new Map<string, Promise<Buffer>>();
const cacheKey = randomBytes(32);

/** Step 3: the server-final-message must carry the expected signature. */
export function scramVerify(proof: ScramProof, serverFinal: string): void {
  const attrs = parseAttributes(serverFinal);
  const e = attrs.get('e');
  if (e !== undefined) throw new ScramError(`server reported an error: ${e.slice(0, 64)}`);
  const v = attrs.get('v');
  const got = v === undefined ? Buffer.alloc(0) : Buffer.from(v, 'base64');
  if (got.length !== proof.serverSignature.length || !timingSafeEqual(got, proof.serverSignature)) {
    throw new ScramError('the server signature does not verify: the server does not know the key');
  }
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function saslName(user: string): string {
  return user.replaceAll('=', '=3D').replaceAll(',', '=2C');
}

/** `a=x,b=y` → map; a malformed attribute list is an error. */
function parseAttributes(text: string): Map<string, string> {
  if (text.length > 4096) throw new ScramError('SCRAM message too long');
  const attrs = new Map<string, string>();
  for (const part of text.split(',')) {
    if (!/^[a-zA-Z]=/.test(part)) throw new ScramError('malformed SCRAM attribute');
    attrs.set(part[0]!, part.slice(2));
  }
  return attrs;
}

/**
 * SASLprep (RFC 4013) as PostgreSQL applies it to passwords: printable ASCII is unchanged (the
 * brokered passwords); otherwise non-ASCII spaces map to U+0020, "mapped to nothing" characters
 * go, NFKC applies — and where the result holds a prohibited character, the raw password is used,
 * as PostgreSQL itself does (pg_saslprep failure → raw bytes). Bidirectional checks are left out.
 */
export function saslPrep(password: string): string {
  if (/^[\x20-\x7e]*$/.test(password)) return password;
  const mapped = password
    .replace(/[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/g, ' ')
    .replace(/[\u00ad\u034f\u1806\u180b-\u180d\u200c\u200d\u2060\ufe00-\ufe0f\ufeff]/g, '')
    .normalize('NFKC');
  const prohibited =
    /[\u0000-\u001f\u007f-\u009f\u06dd\u070f\u180e\u200e\u200f\u2028-\u202e\u2061-\u2063\u206a-\u206f\ud800-\udfff\ue000-\uf8ff\ufff9-\ufffd]/;
  return mapped === '' || prohibited.test(mapped) ? password : mapped;
}
