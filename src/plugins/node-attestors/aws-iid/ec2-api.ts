// The aws_iid attestor's one EC2 API call (optional: `ec2_api` in its config): DescribeInstances
// for the instance a verified identity document names, over the EC2 Query API (Version
// 2016-11-15), SigV4-signed with the server's AWS credentials. From the answer: the instance's
// tags, its security groups and its instance profile. The answer is untrusted text from the
// network: bounded (64 KiB, the XML parser's depth and element limits), and the instance in it
// must be the one asked for, owned by the document's account. An error answer or anything else
// refuses the attestation, naming what EC2 said; an endpoint that does not answer is unavailable.
import { PermissionDeniedError } from '../../../core/errors.ts';
import { signRequest, type AwsSigningCredentials } from '../../../crypto/aws-sigv4/sign-request.ts';
import { cleanText, postUpstream } from '../../credential-providers/shared/upstream-http.ts';
import { type XmlElement, childAt, parseXml, textAt } from '../../shared/query-xml.ts';

export const EC2_API_VERSION = '2016-11-15';
export const EC2_TIMEOUT_MS = 10_000;
/** AWS allows 50 tags per resource and 5 security groups per interface (raisable to 16). */
export const MAX_TAGS = 50;
export const MAX_SECURITY_GROUPS = 16;
const MAX_TAG_KEY_BYTES = 128;
const MAX_TAG_VALUE_BYTES = 256;

export interface Ec2Instance {
  readonly tags: readonly { readonly key: string; readonly value: string }[];
  readonly securityGroups: readonly { readonly id: string; readonly name: string }[];
  /** The instance profile's ARN, "" when the instance has none. */
  readonly instanceProfileArn: string;
  /** `instanceState/name`: pending, running, stopping, stopped, shutting-down, terminated. */
  readonly state: string;
}

export interface DescribeInstanceRequest {
  /** The configured endpoint, or "" for https://ec2.<region>.amazonaws.com. */
  readonly endpoint: string;
  readonly region: string;
  readonly accountId: string;
  readonly instanceId: string;
  readonly credentials: AwsSigningCredentials;
  readonly now: number;
  readonly fetch: typeof fetch;
  readonly timeoutMs?: number;
}

const deny = (m: string) => new PermissionDeniedError(`aws_iid: ${m}`);

export function ec2Url(endpoint: string, region: string): URL {
  const u = new URL(endpoint === '' ? `https://ec2.${region}.amazonaws.com` : endpoint);
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u;
}

export async function describeInstance(r: DescribeInstanceRequest): Promise<Ec2Instance> {
  const url = ec2Url(r.endpoint, r.region);
  const where = `the EC2 API (${url.origin})`;
  const body = new URLSearchParams({
    Action: 'DescribeInstances',
    Version: EC2_API_VERSION,
    'InstanceId.1': r.instanceId,
  }).toString();
  const headers = signRequest(
    {
      method: 'POST',
      url,
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
      body,
      region: r.region,
      service: 'ec2',
      now: r.now,
    },
    r.credentials,
  );
  // Host is the transport's to set; it was signed with the same value.
  delete headers.host;
  const res = await postUpstream({
    url: url.toString(),
    where,
    headers,
    body,
    timeoutMs: r.timeoutMs ?? EC2_TIMEOUT_MS,
    fetch: r.fetch,
  });
  let root: XmlElement;
  try {
    root = parseXml(res.text);
  } catch (e) {
    throw deny(`${where} answered HTTP ${res.status} with no valid XML (${(e as Error).message})`);
  }
  if (!res.ok || root.name === 'Response') throw deny(errorOf(where, res.status, root));
  if (root.name !== 'DescribeInstancesResponse')
    throw deny(`${where} answered <${cleanText(root.name, 64)}>, not DescribeInstancesResponse`);
  return instanceOf(where, root, r.instanceId, r.accountId);
}

/** EC2's error shape: Response/Errors/Error/{Code,Message}. */
function errorOf(where: string, status: number, root: XmlElement): string {
  const code = cleanText(textAt(root, 'Errors', 'Error', 'Code'), 100);
  const message = cleanText(textAt(root, 'Errors', 'Error', 'Message'), 300);
  if (code === '') return `${where} refused DescribeInstances (HTTP ${status})`;
  return `${where} refused DescribeInstances: ${code}${message === '' ? '' : ` (${message})`} (HTTP ${status})`;
}

/** The one instance asked for, in the one reservation of the document's account. */
function instanceOf(
  where: string,
  root: XmlElement,
  instanceId: string,
  accountId: string,
): Ec2Instance {
  const reservations = childAt(root, 'reservationSet')?.children ?? [];
  const found = reservations.flatMap((res) =>
    (childAt(res, 'instancesSet')?.children ?? []).map((inst) => ({ res, inst })),
  );
  if (found.length !== 1)
    throw deny(`${where} described ${found.length} instances for ${instanceId}, not 1`);
  const { res, inst } = found[0] as { res: XmlElement; inst: XmlElement };
  if (textAt(inst, 'instanceId') !== instanceId)
    throw deny(`${where} described another instance than ${instanceId}`);
  if (textAt(res, 'ownerId') !== accountId)
    throw deny(`${where} says instance ${instanceId} is not owned by account ${accountId}`);
  return {
    tags: tagsOf(where, inst),
    securityGroups: groupsOf(where, inst),
    instanceProfileArn: profileOf(where, inst),
    state: cleanText(textAt(inst, 'instanceState', 'name'), 32),
  };
}

function items(where: string, parent: XmlElement, set: string, max: number): XmlElement[] {
  const list = (childAt(parent, set)?.children ?? []).filter((c) => c.name === 'item');
  if (list.length > max) throw deny(`${where} answered more than ${max} ${set} items`);
  return list;
}

/** A value safe in a selector: printable, bounded (else the answer is refused, not cut). */
function field(where: string, v: string, what: string, maxBytes: number, empty = false): string {
  if ((!empty && v === '') || Buffer.byteLength(v) > maxBytes || /[\u0000-\u001f\u007f]/.test(v))
    throw deny(`${where} answered a malformed ${what}`);
  return v;
}

function tagsOf(where: string, inst: XmlElement): Ec2Instance['tags'] {
  // The instance's own tagSet (a direct child of the instance item).
  return items(where, inst, 'tagSet', MAX_TAGS).map((t) => ({
    key: field(where, textAt(t, 'key'), 'tag key', MAX_TAG_KEY_BYTES),
    value: field(where, childAt(t, 'value')?.text ?? '', 'tag value', MAX_TAG_VALUE_BYTES, true),
  }));
}

function groupsOf(where: string, inst: XmlElement): Ec2Instance['securityGroups'] {
  // The instance's groupSet (a direct child), not those of its network interfaces.
  return items(where, inst, 'groupSet', MAX_SECURITY_GROUPS).map((g) => {
    const id = field(where, textAt(g, 'groupId'), 'security group id', 64);
    if (!/^sg-[0-9a-f]{8,32}$/.test(id))
      throw deny(`${where} answered a malformed security group id`);
    return { id, name: field(where, textAt(g, 'groupName'), 'security group name', 255) };
  });
}

function profileOf(where: string, inst: XmlElement): string {
  const arn = textAt(inst, 'iamInstanceProfile', 'arn');
  if (arn === '') return '';
  if (!/^arn:aws[a-z-]*:iam::\d{12}:instance-profile\/[\w+=,.@/-]{1,512}$/.test(arn))
    throw deny(`${where} answered a malformed instance profile ARN`);
  return arn;
}
