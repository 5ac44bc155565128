// Server half of gcp_iit: the GCE instance identity token (format=full) verified against
// Google's keys, for our audience, unexpired, from an allowed project; trust on first use of the
// instance ID (SPIRE's gcp_iit). The token is a bearer token valid for an hour: a copy can be
// replayed until it expires, which is what trust on first use guards against.
import { PermissionDeniedError } from '../../../core/errors.ts';
import type { Selector } from '../../../core/selector.ts';
import { type JwksSource, verifyCloudJwt } from '../cloud-jwt.ts';
import type { NodeAttestor } from '../node-attestor.ts';

export const GCP_IIT_TYPE = 'gcp_iit';
export const DEFAULT_GCP_AUDIENCE = 'tessera-gcp-node-attestor';
/** Google signs instance identity tokens as this issuer (both spellings occur in ID tokens). */
export const GOOGLE_ISSUERS = ['https://accounts.google.com', 'accounts.google.com'];

export interface GceInstance {
  readonly projectId: string;
  readonly zone: string;
  readonly instanceId: string;
  readonly instanceName: string;
  readonly serviceAccount: string;
}

const FIELDS: Readonly<Record<string, RegExp>> = {
  project_id: /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/,
  zone: /^[a-z0-9-]{1,64}$/,
  instance_id: /^\d{1,20}$/,
  instance_name: /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/,
};
const EMAIL_RE = /^[A-Za-z0-9._%+-]{1,128}@[A-Za-z0-9.-]{1,128}$/;

export interface GcpIitServerOptions {
  readonly keys: JwksSource;
  readonly audience: string;
  readonly projectIds: ReadonlySet<string>;
  readonly allowReattestation: boolean;
  readonly now: () => number;
}

const deny = (m: string) => new PermissionDeniedError(`gcp_iit: ${m}`);

export function gceInstance(claims: Record<string, unknown>): GceInstance {
  const ce = (claims.google as { compute_engine?: unknown } | undefined)?.compute_engine;
  if (ce === null || typeof ce !== 'object')
    throw deny('token has no google.compute_engine claims (request it with format=full)');
  const v: Record<string, string> = {};
  for (const [k, re] of Object.entries(FIELDS)) {
    const x = (ce as Record<string, unknown>)[k];
    if (typeof x !== 'string' || !re.test(x))
      throw deny(`token has no valid google.compute_engine.${k}`);
    v[k] = x;
  }
  const email = claims.email;
  if (typeof email !== 'string' || !EMAIL_RE.test(email))
    throw deny('token has no valid service account email');
  return {
    projectId: v.project_id as string,
    zone: v.zone as string,
    instanceId: v.instance_id as string,
    instanceName: v.instance_name as string,
    serviceAccount: email,
  };
}

export function gcpIitSelectors(i: GceInstance): Selector[] {
  const s = (value: string): Selector => ({ type: GCP_IIT_TYPE, value });
  return [
    s(`project:${i.projectId}`),
    s(`zone:${i.zone}`),
    s(`instance_name:${i.instanceName}`),
    s(`instance_id:${i.instanceId}`),
    s(`service_account:${i.serviceAccount}`),
  ];
}

export function createGcpIitAttestor(o: GcpIitServerOptions): NodeAttestor {
  return {
    type: GCP_IIT_TYPE,
    async attest(payload) {
      const claims = await verifyCloudJwt(Buffer.from(payload).toString('utf8'), {
        what: GCP_IIT_TYPE,
        keys: o.keys,
        now: o.now(),
        issuers: GOOGLE_ISSUERS,
        audience: o.audience,
      });
      const i = gceInstance(claims);
      if (!o.projectIds.has(i.projectId)) throw deny(`project ${i.projectId} is not allowed`);
      return {
        idSegments: [i.projectId, i.instanceId],
        selectors: gcpIitSelectors(i),
        canReattest: o.allowReattestation,
        trustOnFirstUse: !o.allowReattestation,
      };
    },
  };
}
