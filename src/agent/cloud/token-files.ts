// Token files the agent keeps fresh for SDKs that read a file instead of calling an endpoint:
// AWS_WEB_IDENTITY_TOKEN_FILE (the SDK calls STS itself), Google external-account
// `credential_source.file`, AZURE_FEDERATED_TOKEN_FILE. Each names a SPIFFE ID and audience; the
// agent mints a JWT-SVID for it (the agent's own JWT-SVID path and cache) and writes it atomically,
// owned by the workload's uid/gid, mode 0600 or 0640, again before half its life.
//
// The content is the JWT exactly, no trailing newline: the AWS SDK and google-auth-library read
// the file untrimmed and would send a newline as part of the token.
//
// Paths were checked at config load (token-file-paths.ts); before every write the real path of
// the parent directory is checked again, so a symlink swapped in by a workload cannot redirect
// the agent's write.
import { randomBytes } from 'node:crypto';
import { mkdir, open, realpath, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { FailedPreconditionError } from '../../core/errors.ts';
import { insideRoots } from './token-file-paths.ts';

/** Where and how a file is written. */
export interface OwnedFile {
  readonly path: string;
  readonly uid: number;
  readonly gid: number;
  /** 0o600 or 0o640. */
  readonly mode: number;
}

export interface JwtTokenFile extends OwnedFile {
  readonly spiffe_id: string;
  readonly audience: string;
}

/** Mints (or takes from the agent's cache) a JWT-SVID for the SPIFFE ID and audience. */
export type MintJwt = (spiffeId: string, audience: string) => Promise<string>;

export interface TokenFilesOptions {
  readonly files: readonly JwtTokenFile[];
  /** The data directory and cloud.token_dir (tokenRoots). */
  readonly roots: readonly string[];
  readonly mint: MintJwt;
  readonly now?: () => number;
  readonly log: {
    info(fields: Record<string, unknown>, msg: string): void;
    warn(fields: Record<string, unknown>, msg: string): void;
  };
  /** After a failed mint or write, try again this soon. Default 5 s. */
  readonly retryMs?: number;
}

/** Longest sleep between checks (a clock jump is noticed at least this often). */
const MAX_SLEEP_MS = 60_000;

/**
 * Writes `data` to `file` atomically (temp file beside it, fsync, rename), owned by uid/gid with
 * `mode`, after checking that the parent's real path is inside `roots`. Missing parents are
 * created (0755: the files themselves carry the protection).
 */
export async function writeOwnedFile(
  f: OwnedFile,
  data: string,
  roots: readonly string[],
): Promise<void> {
  const dir = path.dirname(f.path);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const realDir = await realpath(dir);
  const realRoots = await Promise.all(roots.map((r) => realpath(r).catch(() => r)));
  const target = path.join(realDir, path.basename(f.path));
  if (!insideRoots(target, realRoots)) {
    throw new FailedPreconditionError(
      `token file ${f.path}: its directory resolves to ${realDir}, outside the agent's token directories`,
    );
  }
  const tmp = path.join(realDir, `.${path.basename(f.path)}.tmp-${randomBytes(6).toString('hex')}`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(data);
    await fh.chown(f.uid, f.gid);
    await fh.chmod(f.mode);
    await fh.sync();
    await fh.close();
    await rename(tmp, target);
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
}

/** The `exp` of a JWT in epoch ms (the agent minted it; only scheduling depends on it). */
export function jwtExpiryMs(jwt: string): number {
  const payload = jwt.split('.')[1] ?? '';
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
    exp?: unknown;
  };
  if (typeof claims.exp !== 'number') throw new Error('the JWT-SVID has no exp');
  return claims.exp * 1000;
}

export class TokenFiles {
  readonly #o: TokenFilesOptions;
  readonly #now: () => number;
  /** Per file: when to write it again (epoch ms). */
  readonly #due = new Map<string, number>();

  constructor(o: TokenFilesOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  /** Writes every file that is due; returns when the next one is. */
  async refreshDue(): Promise<number> {
    let next = this.#now() + MAX_SLEEP_MS;
    for (const f of this.#o.files) {
      const due = this.#due.get(f.path) ?? 0;
      const at = due <= this.#now() ? await this.#write(f) : due;
      this.#due.set(f.path, at);
      next = Math.min(next, at);
    }
    return next;
  }

  /** Keeps the files fresh until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const next = await this.refreshDue();
      await sleep(Math.max(250, next - this.#now()), signal);
    }
  }

  /** Writes one file; returns when to write it again (half its life, or a retry). */
  async #write(f: JwtTokenFile): Promise<number> {
    const now = this.#now();
    try {
      const jwt = await this.#o.mint(f.spiffe_id, f.audience);
      await writeOwnedFile(f, jwt, this.#o.roots);
      const exp = jwtExpiryMs(jwt);
      this.#o.log.info(
        { path: f.path, spiffeId: f.spiffe_id, expiresAt: new Date(exp).toISOString() },
        'token file written',
      );
      return now + Math.max(1000, Math.floor((exp - now) / 2));
    } catch (e) {
      this.#o.log.warn(
        { path: f.path, spiffeId: f.spiffe_id, err: (e as Error).message },
        'token file not written; retrying',
      );
      return now + (this.#o.retryMs ?? 5000);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
