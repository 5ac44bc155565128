// Verification of a Kubernetes projected service-account token against the cluster's issuer
// keys: a compact JWS whose key is found by kid and whose algorithm must fit that key (the
// header alone decides nothing), then iss, aud, exp/nbf, and the claims Kubernetes binds into
// projected tokens: sub `system:serviceaccount:<ns>:<name>` and the `kubernetes.io` claim with the
// namespace, service account, pod and node. Every failure names the check.
import { type KeyObject, verify } from 'node:crypto';
import { PermissionDeniedError } from '../../../core/errors.ts';
import { isAllowedJwtAlg, jwsVerifyParams } from '../../../crypto/jwt/alg.ts';

export const LEEWAY_SECONDS = 30;

export interface PsatIdentity {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly podName: string;
  readonly podUid: string;
  readonly nodeName: string;
  readonly nodeUid: string;
}

export interface PsatCheck {
  /** The cluster's name, for messages. */
  readonly cluster: string;
  readonly issuer: string;
  readonly audiences: readonly string[];
  /** Epoch ms. */
  readonly now: number;
  /** The key for a kid, or undefined (may refresh a remote key set first). */
  resolveKey(kid: string): Promise<KeyObject | undefined>;
}

const deny = (why: string) => new PermissionDeniedError(`k8s_psat: ${why}`);
const SEGMENT_RE = /^[A-Za-z0-9_-]+$/;

/** Verifies signature and claims; returns the pod/node identity the token is bound to. */
export async function verifyPsat(token: string, c: PsatCheck): Promise<PsatIdentity> {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((p) => SEGMENT_RE.test(p)))
    throw deny('token is not a compact JWS');
  const [h, p, s] = parts as [string, string, string];
  const header = decodeJson(h, 'header');
  const claims = decodeJson(p, 'payload');
  const { alg, kid } = header;
  if (!isAllowedJwtAlg(alg)) throw deny(`token algorithm ${clip(String(alg))} is not allowed`);
  if (typeof kid !== 'string' || kid === '') throw deny('token has no kid');
  const key = await c.resolveKey(kid);
  if (!key)
    throw deny(
      `token signature does not verify: kid "${clip(kid)}" is not a key of cluster "${c.cluster}"`,
    );
  const params = jwsVerifyParams(alg, key);
  let ok = false;
  if (params) {
    try {
      const sig = Buffer.from(s, 'base64url');
      ok =
        (params.sigLength === null || sig.length === params.sigLength) &&
        verify(params.hash, Buffer.from(`${h}.${p}`, 'latin1'), params.options, sig);
    } catch {
      ok = false;
    }
  }
  if (!ok) throw deny(`token signature does not verify with the keys of cluster "${c.cluster}"`);
  checkIssuer(claims, c);
  checkTimes(claims, c.now);
  checkAudience(claims.aud, c.audiences);
  return identityOf(claims);
}

function checkIssuer(claims: Record<string, unknown>, c: PsatCheck): void {
  if (claims.iss !== c.issuer)
    throw deny(
      `token issuer "${clip(String(claims.iss))}" is not the issuer of cluster "${c.cluster}"`,
    );
}

export function checkTimes(claims: Record<string, unknown>, nowMs: number): void {
  const now = nowMs / 1000;
  if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp))
    throw deny('token has no expiry (exp)');
  if (now > claims.exp + LEEWAY_SECONDS) throw deny('token has expired');
  if (
    claims.nbf !== undefined &&
    (typeof claims.nbf !== 'number' || now + LEEWAY_SECONDS < claims.nbf)
  )
    throw deny('token is not yet valid (nbf)');
}

export function checkAudience(aud: unknown, expected: readonly string[]): void {
  const list = typeof aud === 'string' ? [aud] : aud;
  const ok = Array.isArray(list) && list.some((a) => typeof a === 'string' && expected.includes(a));
  if (!ok)
    throw deny(`token audience does not include ${expected.map((a) => `"${a}"`).join(' or ')}`);
}

/** sub and the `kubernetes.io` claim must agree; pod and node must be bound (Kubernetes ≥ 1.30). */
export function identityOf(claims: Record<string, unknown>): PsatIdentity {
  const k8s = obj(claims['kubernetes.io']);
  if (!k8s)
    throw deny('token has no "kubernetes.io" claim (not a projected service-account token)');
  const namespace = str(k8s.namespace);
  const serviceAccount = str(obj(k8s.serviceaccount)?.name);
  if (!namespace || !serviceAccount)
    throw deny('token "kubernetes.io" claim lacks the namespace or service account');
  if (claims.sub !== `system:serviceaccount:${namespace}:${serviceAccount}`)
    throw deny('token sub does not name the service account of its "kubernetes.io" claim');
  const pod = obj(k8s.pod);
  const podName = str(pod?.name);
  const podUid = str(pod?.uid);
  if (!podName || !podUid) throw deny('token is not bound to a pod');
  const node = obj(k8s.node);
  const nodeName = str(node?.name);
  const nodeUid = str(node?.uid);
  if (!nodeName || !nodeUid)
    throw deny('token is not bound to a node (Kubernetes 1.30+ adds the node to pod-bound tokens)');
  return { namespace, serviceAccount, podName, podUid, nodeName, nodeUid };
}

function decodeJson(segment: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    throw deny(`token ${what} is not valid JSON`);
  }
  const o = obj(v);
  if (!o) throw deny(`token ${what} is not a JSON object`);
  return o;
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

/** A claim value used in selectors and IDs: a bounded string without control characters. */
function str(v: unknown): string {
  return typeof v === 'string' && v.length <= 253 && !/[\u0000-\u001f\u007f]/.test(v) ? v : '';
}

function clip(s: string): string {
  return s.length > 80 ? s.slice(0, 77) + '...' : s;
}
