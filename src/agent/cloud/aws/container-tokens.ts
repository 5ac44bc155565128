// The authorization tokens of the AWS container-credentials endpoint
// (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE): one random token per configured file
// (cloud.aws_container_token_files), written there for the file's uid at agent start and good
// only for callers of that uid. The SDK sends the file's content as `Authorization`; the agent
// compares it in constant time. It keeps an SSRF that can make the workload fetch a URL from
// getting credentials (it cannot add the header), as on ECS and EKS.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { type OwnedFile, writeOwnedFile } from '../token-files.ts';

export type ContainerCheck = 'ok' | 'missing' | 'wrong' | 'other-uid' | 'none-configured';

interface Issued {
  readonly uid: number;
  readonly digest: Buffer;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export class ContainerTokens {
  readonly #issued: Issued[];

  private constructor(issued: Issued[]) {
    this.#issued = issued;
  }

  /** Makes a token per file and writes it (owned by the file's uid/gid, its mode). */
  static async create(
    files: readonly OwnedFile[],
    roots: readonly string[],
  ): Promise<ContainerTokens> {
    const issued: Issued[] = [];
    for (const f of files) {
      const token = randomBytes(32).toString('base64url');
      await writeOwnedFile(f, token, roots);
      issued.push({ uid: f.uid, digest: digest(token) });
    }
    return new ContainerTokens(issued);
  }

  /** Tokens known in memory only (tests). */
  static of(tokens: readonly { uid: number; token: string }[]): ContainerTokens {
    return new ContainerTokens(tokens.map((t) => ({ uid: t.uid, digest: digest(t.token) })));
  }

  /** Checks the Authorization header of a caller with `uid`: every token is compared. */
  check(header: string | string[] | undefined, uid: number): ContainerCheck {
    if (this.#issued.length === 0) return 'none-configured';
    if (typeof header !== 'string' || header === '') return 'missing';
    const d = digest(header);
    let match: Issued | undefined;
    for (const i of this.#issued) if (timingSafeEqual(i.digest, d)) match ??= i;
    if (!match) return 'wrong';
    return match.uid === uid ? 'ok' : 'other-uid';
  }
}
