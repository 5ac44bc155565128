// STS AssumeRoleWithWebIdentity over the AWS Query protocol, as the AWS SDK sends it: an unsigned
// POST of a form to the endpoint's path with a trailing "/", answered in XML. The success shape is
// AssumeRoleWithWebIdentityResponse/AssumeRoleWithWebIdentityResult/Credentials/{AccessKeyId,
// SecretAccessKey,SessionToken,Expiration}; errors are ErrorResponse/Error/{Type,Code,Message},
// reported by Code and Message, naming the endpoint — never the web identity token.
import { UnavailableError } from '../../../core/errors.ts';
import { cleanText, postUpstream } from '../shared/upstream-http.ts';
import { type XmlElement, childAt, parseXml, textAt } from '../../shared/query-xml.ts';

export interface AssumeRoleRequest {
  /** The STS endpoint as configured (`https://sts.amazonaws.com`, a regional one, a stand-in). */
  readonly endpoint: string;
  readonly roleArn: string;
  readonly sessionName: string;
  /** The client's JWT-SVID. */
  readonly webIdentityToken: string;
  readonly durationSeconds: number;
  readonly timeoutMs: number;
  readonly now: number;
  readonly fetch: typeof fetch;
}

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  /** Epoch ms, from `Expiration`. */
  readonly expiresAt: number;
}

/** The URL the SDK posts to: the endpoint's path with a trailing "/". */
export const stsUrl = (endpoint: string): string => {
  const u = new URL(endpoint);
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u.toString();
};

function parse(text: string): XmlElement | null {
  try {
    return parseXml(text);
  } catch {
    return null;
  }
}

function refusal(where: string, status: number, root: XmlElement | null): UnavailableError {
  const code = root?.name === 'ErrorResponse' ? cleanText(textAt(root, 'Error', 'Code'), 100) : '';
  if (code === '') return new UnavailableError(`${where}: HTTP ${status}`);
  const message = cleanText(textAt(root as XmlElement, 'Error', 'Message'), 300);
  return new UnavailableError(
    `${where} refused: ${code}${message === '' ? '' : ` (${message})`} (HTTP ${status})`,
  );
}

export async function assumeRoleWithWebIdentity(r: AssumeRoleRequest): Promise<AwsCredentials> {
  const url = stsUrl(r.endpoint);
  const where = `AWS STS ${url}`;
  const form = new URLSearchParams({
    Action: 'AssumeRoleWithWebIdentity',
    Version: '2011-06-15',
    RoleArn: r.roleArn,
    RoleSessionName: r.sessionName,
    WebIdentityToken: r.webIdentityToken,
    DurationSeconds: String(r.durationSeconds),
  });
  const res = await postUpstream({
    url,
    where,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
    timeoutMs: r.timeoutMs,
    fetch: r.fetch,
  });
  const root = parse(res.text);
  if (!res.ok) throw refusal(where, res.status, root);
  const creds =
    root?.name === 'AssumeRoleWithWebIdentityResponse'
      ? childAt(root, 'AssumeRoleWithWebIdentityResult', 'Credentials')
      : null;
  if (creds === null) {
    throw new UnavailableError(`${where}: the answer is not an AssumeRoleWithWebIdentity result`);
  }
  const field = (name: string): string => {
    const v = textAt(creds, name);
    if (v === '') throw new UnavailableError(`${where}: the answer has no Credentials/${name}`);
    return v;
  };
  const accessKeyId = field('AccessKeyId');
  const secretAccessKey = field('SecretAccessKey');
  const sessionToken = field('SessionToken');
  const expiration = field('Expiration');
  const expiresAt = Date.parse(expiration);
  if (!/^\d{4}-\d\d-\d\dT/.test(expiration) || !Number.isFinite(expiresAt)) {
    throw new UnavailableError(
      `${where}: Credentials/Expiration ${JSON.stringify(cleanText(expiration, 40))} is not a time`,
    );
  }
  if (expiresAt <= r.now) {
    throw new UnavailableError(`${where}: the credentials it returned have already expired`);
  }
  return { accessKeyId, secretAccessKey, sessionToken, expiresAt };
}
