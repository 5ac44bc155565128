// Cancel keys. The client is given a key the proxy made up (BackendKeyData), not the upstream's;
// a CancelRequest carrying it is forwarded with the real key to the upstream of the same server
// workload — only for the process that opened the session (same uid), only while the session
// lasts. A CancelRequest carries no credential, so the key is its only authority: it is random
// and compared in constant time.
import { randomInt, timingSafeEqual } from 'node:crypto';

export interface BackendKey {
  readonly pid: number;
  readonly secret: number;
}

interface Session {
  readonly real: BackendKey;
  readonly secret: Buffer;
  readonly server: string;
  readonly uid: number;
}

const INT32_MAX = 2 ** 31 - 1;
const secretBytes = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n, 0);
  return b;
};

export class CancelKeys {
  readonly #sessions = new Map<number, Session>();
  readonly #max: number;

  /** `max`: the most live sessions tracked; past it new sessions get no cancel key. */
  constructor(max = 100_000) {
    this.#max = max;
  }

  get size(): number {
    return this.#sessions.size;
  }

  /**
   * A proxy key standing for `real`, or undefined when too many sessions are tracked. Call
   * `release` when the session ends.
   */
  issue(
    real: BackendKey,
    server: string,
    uid: number,
  ): { key: BackendKey; release: () => void } | undefined {
    if (this.#sessions.size >= this.#max) return undefined;
    let pid: number;
    do pid = randomInt(1, INT32_MAX);
    while (this.#sessions.has(pid));
    const secret = randomInt(-(2 ** 31), INT32_MAX);
    const session: Session = { real, secret: secretBytes(secret), server, uid };
    this.#sessions.set(pid, session);
    return {
      key: { pid, secret },
      release: () => {
        if (this.#sessions.get(pid) === session) this.#sessions.delete(pid);
      },
    };
  }

  /** The real key for a cancel sent through `server` by `uid`, or undefined. */
  resolve(key: BackendKey, server: string, uid: number): BackendKey | undefined {
    const s = this.#sessions.get(key.pid);
    if (s === undefined) return undefined;
    const ok = timingSafeEqual(s.secret, secretBytes(key.secret));
    return ok && s.server === server && s.uid === uid ? s.real : undefined;
  }
}
