// Verification through the cluster's API server: POST the token to
// /apis/authentication.k8s.io/v1/tokenreviews (the caller's own bearer token must be allowed to
// create TokenReviews) and read who it names. The API server checks signature, expiry, audience
// and that the bound pod still exists; we still check the audience it reports and the user's
// shape. Pod and node come from the review's `extra` (Kubernetes ≥ 1.30 for the node).
import { PermissionDeniedError } from '../../../core/errors.ts';
import { httpsJson } from './https-json.ts';
import { checkAudience, type PsatIdentity } from './token.ts';

export interface TokenReviewOptions {
  readonly cluster: string;
  /** The API server's base URL. */
  readonly apiServer: URL;
  readonly ca?: string | undefined;
  /** Read on each review: Kubernetes rotates projected tokens of the server's own pod. */
  readonly bearer: () => Promise<string>;
  readonly audiences: readonly string[];
  readonly timeoutMs: number;
}

const EXTRA = 'authentication.kubernetes.io/';
const deny = (why: string) => new PermissionDeniedError(`k8s_psat: ${why}`);

export async function reviewToken(token: string, o: TokenReviewOptions): Promise<PsatIdentity> {
  const url = new URL('/apis/authentication.k8s.io/v1/tokenreviews', o.apiServer);
  const review = (await httpsJson(
    url,
    { ca: o.ca, bearer: await o.bearer(), timeoutMs: o.timeoutMs, maxBytes: 64 * 1024 },
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token, audiences: o.audiences },
    },
  )) as { status?: Record<string, unknown> } | null;
  const status = review?.status;
  if (!status || status.authenticated !== true) {
    const why = typeof status?.error === 'string' ? `: ${status.error.slice(0, 200)}` : '';
    throw deny(`the API server of cluster "${o.cluster}" did not authenticate the token${why}`);
  }
  checkAudience(status.audiences, o.audiences);
  const user = (status.user ?? {}) as { username?: unknown; extra?: Record<string, unknown> };
  const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(String(user.username ?? ''));
  if (!m) throw deny('token does not name a service account');
  const one = (k: string): string => {
    const v = user.extra?.[EXTRA + k];
    const s = Array.isArray(v) && typeof v[0] === 'string' ? v[0] : '';
    return s.length <= 253 && !/[\u0000-\u001f\u007f]/.test(s) ? s : '';
  };
  const podName = one('pod-name');
  const podUid = one('pod-uid');
  if (!podName || !podUid) throw deny('token is not bound to a pod');
  const nodeName = one('node-name');
  const nodeUid = one('node-uid');
  if (!nodeName || !nodeUid)
    throw deny('token is not bound to a node (Kubernetes 1.30+ adds the node to pod-bound tokens)');
  return {
    namespace: m[1] as string,
    serviceAccount: m[2] as string,
    podName,
    podUid,
    nodeName,
    nodeUid,
  };
}
