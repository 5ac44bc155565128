// Server half of aws_iid: verify the PKCS#7 over the instance identity document against AWS's
// certificates (the region's own where AWS publishes one), check the account against the
// allow-list, and trust the instance on first use (SPIRE's aws_iid). The document is the same
// for the instance's whole life and anyone on the instance can read it, so a copy can be
// replayed: only the first agent to present it is believed, unless re-attestation is allowed.
import { PermissionDeniedError } from '../../../core/errors.ts';
import type { Selector } from '../../../core/selector.ts';
import type { AwsSigningCredentials } from '../../../crypto/aws-sigv4/sign-request.ts';
import type { NodeAttestor } from '../node-attestor.ts';
import { describeInstance, type Ec2Instance } from './ec2-api.ts';
import { type InstanceIdentity, parseAwsIidPayload, parseIdentityDocument } from './document.ts';
import { type TrustedCertificate, verifyIidPkcs7 } from './pkcs7.ts';

export const AWS_IID_TYPE = 'aws_iid';

export interface AwsTrustedCertificate extends TrustedCertificate {
  /** Regions this certificate may sign for; null: any region (operator-supplied certificates). */
  readonly regions: readonly string[] | 'other' | null;
}

export interface AwsIidServerOptions {
  readonly certificates: readonly AwsTrustedCertificate[];
  readonly accountIds: ReadonlySet<string>;
  readonly allowReattestation: boolean;
  readonly now: () => number;
  /** Tags, security groups and instance profile from the EC2 API; absent: not asked. */
  readonly ec2?: Ec2ApiOptions;
}

export interface Ec2ApiOptions {
  /** "" = https://ec2.<region>.amazonaws.com. */
  readonly endpoint: string;
  readonly tags: boolean;
  readonly instanceProfile: boolean;
  readonly credentials: AwsSigningCredentials;
  readonly fetch: typeof fetch;
}

/** Selectors from the EC2 API's description of the instance (SPIRE's names where it has them). */
export function ec2Selectors(i: Ec2Instance, o: Pick<Ec2ApiOptions, 'tags' | 'instanceProfile'>) {
  const s = (value: string): Selector => ({ type: AWS_IID_TYPE, value });
  return [
    ...(o.tags ? i.tags.map((t) => s(`tag:${t.key}:${t.value}`)) : []),
    ...i.securityGroups.flatMap((g) => [s(`sg:id:${g.id}`), s(`sg:name:${g.name}`)]),
    ...(o.instanceProfile && i.instanceProfileArn !== ''
      ? [s(`instance_profile:${i.instanceProfileArn}`)]
      : []),
  ];
}

export function awsIidSelectors(d: InstanceIdentity): Selector[] {
  const s = (value: string): Selector => ({ type: AWS_IID_TYPE, value });
  return [
    s(`account:${d.accountId}`),
    s(`region:${d.region}`),
    s(`az:${d.availabilityZone}`),
    s(`instance_id:${d.instanceId}`),
    s(`image_id:${d.imageId}`),
    s(`instance_type:${d.instanceType}`),
  ];
}

/** Whether `cert` may sign for `region`: its own list, or "other" when no list names the region. */
function signsFor(
  cert: AwsTrustedCertificate,
  region: string,
  all: readonly AwsTrustedCertificate[],
): boolean {
  if (cert.regions === null) return true;
  if (cert.regions === 'other')
    return !all.some((c) => Array.isArray(c.regions) && c.regions.includes(region));
  return cert.regions.includes(region);
}

export function createAwsIidAttestor(o: AwsIidServerOptions): NodeAttestor {
  return {
    type: AWS_IID_TYPE,
    async attest(payload) {
      const { document, pkcs7 } = parseAwsIidPayload(payload);
      const { content, signer } = verifyIidPkcs7(pkcs7, document, o.certificates, o.now());
      const id = parseIdentityDocument(content);
      if (!signsFor(signer as AwsTrustedCertificate, id.region, o.certificates))
        throw new PermissionDeniedError(
          `aws_iid: the signing certificate is not AWS's certificate for region ${id.region}`,
        );
      if (!o.accountIds.has(id.accountId))
        throw new PermissionDeniedError(`aws_iid: account ${id.accountId} is not allowed`);
      // Only for a verified document of an allowed account: the server's AWS credentials are
      // never spent on an unverified claim.
      const described = o.ec2
        ? ec2Selectors(
            await describeInstance({
              endpoint: o.ec2.endpoint,
              region: id.region,
              accountId: id.accountId,
              instanceId: id.instanceId,
              credentials: o.ec2.credentials,
              now: o.now(),
              fetch: o.ec2.fetch,
            }),
            o.ec2,
          )
        : [];
      return {
        idSegments: [id.accountId, id.region, id.instanceId],
        selectors: [...awsIidSelectors(id), ...described],
        canReattest: o.allowReattestation,
        trustOnFirstUse: !o.allowReattestation,
      };
    },
  };
}
