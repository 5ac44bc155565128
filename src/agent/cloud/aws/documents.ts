// The AWS credential documents the SDKs parse, from a released credential: the IMDS
// `iam/security-credentials/<role>` document and the container-credentials document. Pure.
import type { ReleasedCredential } from '../../cache/credential-cache.ts';

/** ISO 8601 to the second with `Z`, as AWS writes times. */
export const awsTime = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

interface AwsValue {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiresAt: number;
}

/** The AWS keys of a release, or null when the credential is not AWS's or does not expire. */
export function awsValue(r: ReleasedCredential): AwsValue | null {
  const v = r.credential.value;
  if (v.kind !== 'aws' || r.credential.expiresAt === null) return null;
  return { ...v, expiresAt: r.credential.expiresAt };
}

/** `GET /latest/meta-data/iam/security-credentials/<role>` as EC2 answers it. */
export function imdsDocument(v: AwsValue, lastUpdated: number): string {
  return JSON.stringify(
    {
      Code: 'Success',
      LastUpdated: awsTime(lastUpdated),
      Type: 'AWS-HMAC',
      AccessKeyId: v.accessKeyId,
      SecretAccessKey: v.secretAccessKey,
      Token: v.sessionToken,
      Expiration: awsTime(v.expiresAt),
    },
    null,
    2,
  );
}

/** The container credentials document (ECS/EKS Pod Identity shape). */
export function containerDocument(v: AwsValue): string {
  return JSON.stringify({
    AccessKeyId: v.accessKeyId,
    SecretAccessKey: v.secretAccessKey,
    Token: v.sessionToken,
    Expiration: awsTime(v.expiresAt),
  });
}

/** An error body as the container endpoint answers (the SDK reads `Code` and `Message`). */
export function containerError(code: string, message: string): string {
  return JSON.stringify({ Code: code, Message: message });
}
