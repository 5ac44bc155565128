// The kubelet's pod list, fetched over HTTPS with the agent's service account token (or from the
// read-only HTTP port, where no token is ever sent), cached briefly and shared: attestations that
// arrive together wait on one request. The token and CA are re-read on each fetch, since the
// kubelet rotates projected service account tokens.
import { readFile } from 'node:fs/promises';
import { FailedPreconditionError, UnavailableError } from '../../../core/errors.ts';
import { boundedGet } from '../docker/http-get.ts';
import { parsePodList } from './pod-list.ts';
import type { Pod } from './pod-list.ts';

const MAX_CREDENTIAL_FILE_BYTES = 1024 * 1024;

export interface KubeletClientOptions {
  /** Base URL, e.g. https://node-1:10250 or http://127.0.0.1:10255. */
  readonly url: URL;
  readonly tokenPath: string;
  readonly caPath: string;
  readonly skipVerification: boolean;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly cacheTtlMs: number;
  readonly now: () => number;
}

export interface PodSnapshot {
  readonly pods: readonly Pod[];
  /** When the request that produced it was sent: the list is at least this fresh. */
  readonly fetchedAt: number;
}

export class KubeletPods {
  readonly #o: KubeletClientOptions;
  #cache: PodSnapshot | null = null;
  #inflight: { startedAt: number; promise: Promise<PodSnapshot> } | null = null;

  constructor(o: KubeletClientOptions) {
    this.#o = o;
  }

  /** A list fetched no earlier than `notBefore`: the cached one, an in-flight one, or a new one. */
  async get(notBefore: number, signal: AbortSignal): Promise<PodSnapshot> {
    if (this.#cache && this.#cache.fetchedAt >= notBefore) return this.#cache;
    let flight = this.#inflight;
    if (!flight || flight.startedAt < notBefore) {
      const startedAt = this.#o.now();
      const promise = this.#fetch().then((pods) => {
        const snap = { pods, fetchedAt: startedAt };
        if (!this.#cache || this.#cache.fetchedAt <= startedAt) this.#cache = snap;
        return snap;
      });
      flight = { startedAt, promise };
      this.#inflight = flight;
      const mine = flight;
      promise
        .finally(() => {
          if (this.#inflight === mine) this.#inflight = null;
        })
        .catch(() => {});
    }
    // One caller giving up does not cancel the request the others wait on.
    return untilAborted(flight.promise, signal);
  }

  /** The cache horizon for an attestation starting now. */
  freshFrom(now: number): number {
    return now - this.#o.cacheTtlMs;
  }

  async #fetch(): Promise<Pod[]> {
    const o = this.#o;
    const secure = o.url.protocol === 'https:';
    const peer = `${o.url.origin}/pods`;
    const headers: Record<string, string> = { accept: 'application/json' };
    let ca: Buffer | undefined;
    if (secure) {
      headers.authorization = `Bearer ${await readToken(o.tokenPath)}`;
      if (!o.skipVerification) ca = await readCredential(o.caPath, 'kubelet_ca_path');
    }
    const res = await boundedGet({
      what: 'k8s',
      peer,
      https: secure,
      options: {
        hostname: o.url.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: o.url.port || (secure ? 443 : 80),
        path: `${o.url.pathname.replace(/\/+$/, '')}/pods`,
        headers,
        ...(secure ? { rejectUnauthorized: !o.skipVerification, ...(ca ? { ca } : {}) } : {}),
        agent: false,
      },
      timeoutMs: o.timeoutMs,
      maxBytes: o.maxBytes,
    });
    if (res.status === 401 || res.status === 403) {
      throw new FailedPreconditionError(
        `k8s: the kubelet at ${peer} refused the agent (HTTP ${res.status}); check token_path and the agent's RBAC (nodes/proxy)`,
      );
    }
    if (res.status !== 200) {
      throw new UnavailableError(`k8s: the kubelet at ${peer} answered HTTP ${res.status}`);
    }
    return parsePodList(res.body);
  }
}

async function readCredential(path: string, key: string): Promise<Buffer> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FailedPreconditionError(`k8s: cannot read ${key} ${path}: ${code ?? String(e)}`, {
      cause: e,
    });
  }
  if (data.length > MAX_CREDENTIAL_FILE_BYTES) {
    throw new FailedPreconditionError(`k8s: ${key} ${path} is larger than 1 MiB`);
  }
  return data;
}

async function readToken(path: string): Promise<string> {
  const token = (await readCredential(path, 'token_path')).toString('utf8').trim();
  // A token goes into a header: reject anything that is not a plain printable string.
  if (token === '' || !/^[\x21-\x7e]+$/.test(token)) {
    throw new FailedPreconditionError(`k8s: token_path ${path} does not hold a bearer token`);
  }
  return token;
}

function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
