// Signs a request the server itself sends to AWS (the aws_iid attestor's EC2 DescribeInstances)
// with AWS Signature Version 4, on the same canonical request and key chain the agent's
// re-signer uses (canonical.ts, signing.ts). Signed headers: host, x-amz-date, the session token
// when there is one, and whatever else the caller passes (content-type); the payload hash is the
// body's SHA-256, as the AWS SDK signs a Query-protocol POST.
import { canonicalRequest } from './canonical.ts';
import {
  ALGORITHM,
  hmacHex,
  requestStringToSign,
  scopeString,
  sha256Hex,
  signingKey,
  type SigV4Scope,
} from './signing.ts';

export interface AwsSigningCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** "" for long-term keys: then no X-Amz-Security-Token is sent. */
  readonly sessionToken: string;
}

export interface RequestToSign {
  readonly method: string;
  readonly url: URL;
  /** Lower-case names; signed as given. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly region: string;
  readonly service: string;
  /** Epoch ms: the signing time. */
  readonly now: number;
}

/** `20150830T123600Z` */
export function amzDate(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

/** The headers to send: the caller's, host, x-amz-date, the session token and Authorization. */
export function signRequest(
  r: RequestToSign,
  creds: AwsSigningCredentials,
): Record<string, string> {
  const date = amzDate(r.now);
  const scope: SigV4Scope = { date: date.slice(0, 8), region: r.region, service: r.service };
  const headers: Record<string, string> = { ...r.headers, host: r.url.host, 'x-amz-date': date };
  if (creds.sessionToken !== '') headers['x-amz-security-token'] = creds.sessionToken;
  const signedHeaders = Object.keys(headers).sort();
  const canonical = canonicalRequest(
    {
      method: r.method,
      path: r.url.pathname,
      query: r.url.search.slice(1),
      headers,
      signedHeaders,
      payloadHash: sha256Hex(r.body),
    },
    r.service,
  );
  const signature = hmacHex(
    signingKey(creds.secretAccessKey, scope),
    requestStringToSign(date, scope, canonical),
  );
  headers.authorization =
    `${ALGORITHM} Credential=${creds.accessKeyId}/${scopeString(scope)}, ` +
    `SignedHeaders=${signedHeaders.join(';')}, Signature=${signature}`;
  return headers;
}
